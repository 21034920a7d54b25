"""Training jobs in real worker processes: ordering, limits, kills."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from model.errors import Busy
from model.jobs import JobManager
from model.modelstore import latest_version, list_versions, load_model, write_model
from tests.support.synthetic import intent_dataset
from model.training import train_model
from model.types import Example

ROOT = Path(__file__).resolve().parents[2]


def data(n=120, classes=3, seed=0):
    texts, labels = intent_dataset(n, classes, seed=seed)
    return [Example(t, lab) for t, lab in zip(texts, labels)]


class Recorder:
    """Collects statuses; optionally runs a check when a state arrives."""

    def __init__(self, on_state=None):
        self.statuses = []
        self.on_state = on_state or {}

    async def __call__(self, status):
        self.statuses.append(status)
        check = self.on_state.get(status.state)
        if check:
            check(status)

    @property
    def states(self):
        return [s.state for s in self.statuses]


@pytest.mark.slow
async def test_successful_job_reports_in_order_and_only_after_the_model_exists(tmp_path):
    jobs = JobManager(tmp_path, prestart_worker=False)

    def model_must_exist(status):
        path = latest_version(tmp_path, "42")
        assert path is not None and status.job_id in path.name
        model, meta = load_model(path)
        assert meta["dataset"] == "intents" and meta["rows"] == 120
        assert model.predict_one(data()[0].text)[0] == data()[0].label

    rec = Recorder({"finished": model_must_exist})
    job = jobs.submit("42", "intents", data(), rec)
    assert len(job.id) == 6 and rec.states == []  # returned before any work
    final = await job.done
    assert rec.states[0] == "queued" and rec.states[-1] == "finished" and set(rec.states[1:-1]) == {"training"}
    assert [s.finished for s in rec.statuses] == [False] * (len(rec.statuses) - 1) + [True]
    assert rec.statuses[1].message.startswith("training on 120 examples of 3 labels")
    assert final is rec.statuses[-1]
    assert "Training finished: accuracy" in final.message and "macro-F1" in final.message
    assert "5-fold cross-validation on 120 rows" in final.message
    assert final.accuracy >= 0.9 and final.seconds > 0
    for early in rec.statuses[:-1]:
        assert not any(w in early.message.lower() for w in ("finished", "done", "complete"))
    assert jobs.active_job("42") is None


async def test_failing_training_reports_failed_and_writes_nothing(tmp_path):
    jobs = JobManager(tmp_path, prestart_worker=False)
    rec = Recorder()
    one_class = [Example(f"text {i}", "same") for i in range(5)]
    final = await jobs.submit("7", "bad", one_class, rec).done
    assert rec.states == ["queued", "training", "failed"]
    assert final.message.startswith("Training failed:") and "two classes" in final.message
    assert list_versions(tmp_path, "7") == []
    assert jobs.active_job("7") is None  # scope is free again


async def test_one_job_per_scope_and_bounded_queue(tmp_path):
    jobs = JobManager(tmp_path, queue_size=1, max_parallel=1, prestart_worker=False)
    first = jobs.submit("1", "a", data(), None)
    with pytest.raises(Busy) as same_scope:
        jobs.submit("1", "a", data(), None)
    assert first.id in same_scope.value.user_message
    second = jobs.submit("2", "a", data(), None)  # waits for the only slot
    with pytest.raises(Busy) as full:
        jobs.submit("3", "a", data(), None)
    assert "queue is full" in full.value.user_message
    await jobs.close()
    assert first.done.done() and second.done.done()


@pytest.mark.slow
async def test_jobs_share_the_slot_in_submission_order(tmp_path):
    jobs = JobManager(tmp_path, max_parallel=1, prestart_worker=False)
    events = []

    messages = {}

    def recorder(name):
        async def cb(status):
            events.append((name, status.state))
            messages[(name, status.state)] = status.message
        return cb

    a = jobs.submit("1", "a", data(seed=1), recorder("a"))
    b = jobs.submit("2", "b", data(seed=2), recorder("b"))
    await asyncio.gather(a.done, b.done)
    assert events.index(("a", "finished")) < events.index(("b", "training"))
    assert events[:2] == [("a", "queued"), ("b", "queued")]
    assert messages[("a", "queued")] == "queued."
    assert messages[("b", "queued")] == "queued (1 job(s) ahead)."


@pytest.mark.slow
async def test_killed_worker_fails_and_old_model_survives(tmp_path):
    old = write_model(tmp_path, "5", train_model(data()).model, {"job_id": "old"})
    jobs = JobManager(tmp_path, prestart_worker=False)

    def kill(status):
        os.kill(job._process.pid, signal.SIGKILL)

    rec = Recorder({"training": kill})
    job = jobs.submit("5", "big", data(4000, 20), rec)
    final = await job.done
    assert rec.states == ["queued", "training", "failed"]
    assert "killed" in final.message
    assert list_versions(tmp_path, "5") == [old]
    model, _ = load_model(old)
    assert model.predict_one(data()[1].text)[0] == data()[1].label


async def test_timeout_kills_the_worker(tmp_path):
    jobs = JobManager(tmp_path, timeout=0.3, prestart_worker=False)
    final = await jobs.submit("6", "big", data(3000, 10), None).done
    assert final.state == "failed" and "longer than" in final.message
    assert list_versions(tmp_path, "6") == []


@pytest.mark.slow
async def test_sigkill_mid_training_never_replaces_the_model(tmp_path):
    """Run the worker directly and kill it while it is fitting a large dataset."""
    old = write_model(tmp_path, "9", train_model(data()).model, {"job_id": "old"})
    texts, labels = intent_dataset(12_000, 60, seed=5)
    payload = json.dumps({"dataset": "big", "examples": [[t, lab, None] for t, lab in zip(texts, labels)]})
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "model.train_worker", "--models-dir", str(tmp_path), "--scope", "9",
        "--job-id", "doomed", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=str(ROOT),
    )
    proc.stdin.write(payload.encode())
    await proc.stdin.drain()
    proc.stdin.close()
    seen = []
    while line := await proc.stdout.readline():
        seen.append(json.loads(line))
        if seen[-1].get("message") == "held-out fit":
            assert proc.returncode is None
            proc.send_signal(signal.SIGKILL)
    assert await proc.wait() == -signal.SIGKILL
    assert [e["event"] for e in seen] == ["ready", "training", "progress", "progress"]
    assert list_versions(tmp_path, "9") == [old]
    model, meta = load_model(latest_version(tmp_path, "9"))
    assert meta["job_id"] == "old"
    assert model.predict_one(data()[2].text)[0] == data()[2].label


async def test_close_kills_running_workers(tmp_path):
    jobs = JobManager(tmp_path, prestart_worker=False)
    pids = []
    started = asyncio.Event()

    async def remember(status):
        if status.state == "training":
            pids.append(job._process.pid)
            started.set()

    job = jobs.submit("8", "big", data(4000, 20), remember)
    with pytest.raises(Busy):
        jobs.submit("8", "again", data(), None)
    await started.wait()
    await jobs.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pids[0], 0)
    with pytest.raises(Busy, match="shutting down"):
        jobs.submit("9", "x", data(), None)


@pytest.mark.slow
async def test_prestarted_worker_is_used_for_the_next_job(tmp_path):
    jobs = JobManager(tmp_path)
    try:
        await jobs.warm_up()
        spare_pid = jobs._spare.pid
        pids = []

        async def remember(status):
            if status.state == "training":
                pids.append(jobs.active_job("3")._process.pid)

        final = await jobs.submit("3", "a", data(), remember).done
        assert final.state == "finished" and set(pids) == {spare_pid}
        assert jobs._spare is None or jobs._spare.pid != spare_pid  # a spare is never reused
    finally:
        await jobs.close()
    assert jobs._spare is None


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)


async def test_workers_get_no_token_and_no_unknown_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("DISCORD_TOKEN", "secret-token-value")
    monkeypatch.setenv("SOME_API_KEY", "also-secret")
    monkeypatch.setenv("LC_PAPER", "C")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    jobs = JobManager(tmp_path)
    try:
        await jobs.warm_up()
        env = environ_of(jobs._spare.pid)  # the real environment of a spawned, waiting worker
    finally:
        await jobs.close()
    assert "DISCORD_TOKEN" not in env and "SOME_API_KEY" not in env
    assert not any("secret" in v for v in env.values())
    assert env["PATH"] == os.environ["PATH"] and env["LC_PAPER"] == "C"
    assert env["OMP_NUM_THREADS"] == "1" and str(ROOT) in env["PYTHONPATH"].split(os.pathsep)


def test_child_environment_is_an_allow_list():
    from model.childenv import child_environment

    env = child_environment(ROOT, {"PATH": "/bin", "HOME": "/h", "LANG": "C.UTF-8", "LC_ALL": "C",
                                   "TMPDIR": "/t", "DISCORD_TOKEN": "x", "AWS_SECRET_ACCESS_KEY": "y",
                                   "OPENBLAS_NUM_THREADS": "4", "PYTHONPATH": "/extra"})
    assert set(env) == {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH", "OPENBLAS_NUM_THREADS",
                        "OMP_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"}
    assert env["OPENBLAS_NUM_THREADS"] == "4"  # the host's choice is kept
    assert env["PYTHONPATH"] == os.pathsep.join([str(ROOT), "/extra"])


def eval_request(model_path, tmp_path, data: bytes, row_cap=None):
    import base64

    out = tmp_path / f"out-{len(list(tmp_path.iterdir()))}"
    out.mkdir()
    return {"model_path": str(model_path), "data_b64": base64.b64encode(data).decode(), "filename": "t.csv",
            "max_bytes": 10_000_000, "max_rows": 200_000, "row_cap": row_cap, "out_dir": str(out)}


def csv_of(examples) -> bytes:
    return ("text,label\n" + "".join(f"{e.text},{e.label}\n" for e in examples)).encode()


async def test_evaluation_runs_in_a_worker_and_returns_a_report(tmp_path):
    from model.reportio import read_report

    path = write_model(tmp_path, "1", train_model(data()).model, {"job_id": "m"})
    jobs = JobManager(tmp_path, prestart_worker=False)
    request = eval_request(path, tmp_path, csv_of(data(60, seed=0)), row_cap=25)
    result = await jobs.evaluate("1", request)
    report = read_report(request["out_dir"])
    assert result["rows"] == report.rows == 25 and report.rows_given == 60
    assert report.labelled and report.accuracy > 0.8
    assert report.text.startswith("(Tested the first 25 of 60 rows")
    assert report.csv.count(b"\n") == 26 and report.png.startswith(b"\x89PNG")


@pytest.mark.slow
async def test_evaluation_errors_keep_their_type_and_message(tmp_path):
    from model.errors import DatasetError, IncompatibleModelError

    path = write_model(tmp_path, "1", train_model(data()).model, {"job_id": "m"})
    jobs = JobManager(tmp_path, prestart_worker=False)
    with pytest.raises(DatasetError) as bad:
        await jobs.evaluate("1", eval_request(path, tmp_path, bytes(range(256)) * 8))
    assert "doesn't look like text" in bad.value.user_message
    damaged = tmp_path / "damaged.model"
    damaged.write_bytes(b"not a model")
    with pytest.raises(IncompatibleModelError):
        await jobs.evaluate("1", eval_request(damaged, tmp_path, csv_of(data(10))))
    assert jobs._evals == {}


async def test_evaluation_is_bounded_per_scope_and_overall_and_times_out(tmp_path):
    from model.errors import ModelError

    path = write_model(tmp_path, "1", train_model(data()).model, {"job_id": "m"})
    big = csv_of(data(20_000, 3))
    jobs = JobManager(tmp_path, prestart_worker=False, eval_queue_size=1, max_parallel_evals=1, eval_timeout=0.5)
    first = asyncio.create_task(jobs.evaluate("1", eval_request(path, tmp_path, big)))
    second = asyncio.create_task(jobs.evaluate("2", eval_request(path, tmp_path, big)))
    await asyncio.sleep(0)  # both tasks registered (no work done yet)
    with pytest.raises(Busy) as same:
        jobs.check_can_evaluate("1")
    assert "already running here" in same.value.user_message
    with pytest.raises(Busy) as full:
        await jobs.evaluate("3", eval_request(path, tmp_path, big))
    assert full.value.retry_after >= 5 and "try again in" in full.value.user_message
    for task in (first, second):
        with pytest.raises(ModelError) as slow:
            await task
        assert "longer than 0.5 seconds" in slow.value.user_message
    assert jobs._evals == {}
    await jobs.close()
