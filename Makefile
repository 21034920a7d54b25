# `make run` runs the bot, `make test` runs the tests; each first does its own set-up.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test setup system-deps bench clean

run: setup
	$(PY) bot.py

test: setup
	$(PY) -m pytest

setup: system-deps $(VENV)/.installed

system-deps:
	@bash scripts/system-deps.sh

$(VENV)/.installed: requirements.txt constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -c constraints.txt
	$(PY) -m pip check
	@touch $@

bench: setup
	$(PY) bench/core.py
	$(PY) bench/burst.py
	$(PY) bench/model.py
	$(PY) bench/stt.py
	$(PY) bench/listening.py
	$(PY) bench/voice.py

clean:
	rm -rf $(VENV) .pytest_cache
