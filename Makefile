# `make run` runs the bot, `make test` runs the tests; each first does its own set-up.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run playground test test-fast setup system-deps bench screenshots clean

# With no DISCORD_TOKEN this opens the playground (a local Discord in your browser).
run: setup
	$(PY) bot.py

playground: setup
	$(PY) bot.py --playground

# Test files run in parallel worker processes, each file whole on one worker (its bot and its
# local Discord are per file). TEST_WORKERS=1 runs them one after another.
TEST_WORKERS ?= 3
PYTEST := $(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

# Everything, as CI runs it.
test: setup
	$(PYTEST)

# The inner loop: unit tests and the quick integration tests (not those marked slow).
test-fast: setup
	$(PYTEST) -m "not slow"

setup: system-deps $(VENV)/.installed

system-deps:
	@bash scripts/system-deps.sh

$(VENV)/.installed: requirements.txt constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -c constraints.txt
	$(PY) -m pip check
	@touch $@

BENCHMARKS := core burst fairness model model_memory stt memory listening tts_timing voice voice_idle voice_listen playground

bench: setup
	@for name in $(BENCHMARKS); do echo "== bench/$$name.py"; $(PY) bench/$$name.py || exit 1; done

# The README's screenshots of the playground, taken by its browser tests.
screenshots: setup
	SCREENSHOTS_DIR=docs $(PY) -m pytest tests/browser -q

clean:
	rm -rf $(VENV) .pytest_cache
