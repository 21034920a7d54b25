"""Worker-process jobs: training (one per scope, a bounded queue) and evaluation.

Both run ``python -m model.train_worker`` via asyncio subprocesses so the
event loop never blocks and heavy work (fitting, parsing a 200,000-row
upload, scoring it) never runs in the bot process. Training progress goes to
an async callback in a fixed order: queued -> training -> finished | failed.
Evaluations are awaited directly; beyond their queue they are refused with
``Busy`` and a retry hint. Workers get an allow-listed environment
(``childenv``), never the bot's token.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from errors import Phrase, format_wait, from_phrase_data

from .childenv import child_environment
from .errors import Busy, DatasetError, IncompatibleModelError, ModelError
from .names import check_scope
from .types import Example, JobStatus

log = logging.getLogger(__name__)
StatusCallback = Callable[[JobStatus], Awaitable[None]]
_PACKAGE_ROOT = Path(__file__).resolve().parent.parent


@dataclass(eq=False)
class JobHandle:
    """A submitted job; await ``done`` for its final JobStatus."""

    id: str
    scope: str
    dataset: str
    rows: int
    done: asyncio.Task | None = None
    state: str = "queued"
    last_status: JobStatus | None = None
    _process: asyncio.subprocess.Process | None = field(default=None, repr=False)


def finished_message(result: dict[str, Any]) -> str:
    """Human summary of a worker's 'finished' event."""
    acc, f1 = result.get("accuracy", 0.0), result.get("macro_f1", 0.0)
    secs, n = result.get("seconds", 0.0), result.get("eval_rows", 0)
    if result.get("eval_method") == "held-out":
        where = f"on {n} held-out rows"
    elif result.get("eval_method") == "cross-validation":
        where = f"by {result.get('cv_folds', 5)}-fold cross-validation on {n} rows"
    else:
        where = f"on the {n} training rows (too few examples per label for a held-out check)"
    text = f"Training finished: accuracy {acc:.2f}, macro-F1 {f1:.2f} {where} ({secs:.1f} s)"
    return text + learner_message(result)


def learner_message(result: dict[str, Any]) -> str:
    """Which learner was chosen and why (held-out figures), and when the model says "not sure"."""
    parts = []
    learner, tried = result.get("learner"), result.get("candidates") or {}
    if learner and len(tried) > 1:
        ranked = sorted(tried.items(), key=lambda kv: -kv[1])
        others = ", ".join(f"{k} {v:.3f}" for k, v in ranked
                           if k != learner and not (k == "tfidf" and learner.startswith("tfidf ")))[:200]
        parts.append(f"Learner: {learner}, chosen on the held-out rows (TF-IDF alone unless another is clearly more "
                     f"accurate; others: {others}).")
    elif learner:
        parts.append(f"Learner: {learner}.")
    if result.get("threshold") is not None and result.get("precision") is not None:
        parts.append(f"Not-sure threshold {result['threshold']:.2f} (held-out: {result['precision']:.0%} of answers "
                     f"right, {result.get('coverage', 1):.0%} answered).")
    if result.get("oos_label"):
        parts.append(f"Messages like the `{result['oos_label']}` examples get \"not sure\".")
    parts = [p for p in parts if p]
    return ("\n" + " ".join(parts)) if parts else ""


def answering_message(result: dict[str, Any]) -> str:
    """How often the model answers, measured on the held-out rows with the rule chat uses."""
    threshold, precision, coverage = result.get("threshold"), result.get("precision"), result.get("coverage")
    if threshold is None or precision is None:
        return ""
    if threshold <= 0 or coverage is None or coverage >= 0.995:
        return Phrase("I'll answer messages like these ({precision:.0%} of answers right on the held-out rows).",
                      precision=precision)
    return Phrase("I answer {coverage:.0%} of messages like these and say I'm not sure on the rest, so that "
                  "{precision:.0%} of my answers are right (held-out rows).", coverage=coverage, precision=precision)


class JobManager:
    """Owns worker processes; all methods must be called on the event loop."""

    def __init__(self, models_dir: Path, *, queue_size: int = 4, keep_versions: int = 3, max_parallel: int = 1,
                 timeout: float = 900.0, python: str = sys.executable, prestart_worker: bool = True,
                 eval_queue_size: int = 4, max_parallel_evals: int = 1, eval_timeout: float = 300.0,
                 worker_options: dict[str, Any] | None = None) -> None:
        self.models_dir = Path(models_dir)
        self.queue_size = queue_size
        self.keep_versions = keep_versions
        self.timeout = timeout
        self.python = python
        self.max_parallel = max_parallel
        self._slots = asyncio.Semaphore(max_parallel)
        self._active: dict[str, JobHandle] = {}
        self._closed = False
        # Evaluations: one per scope, ``max_parallel_evals`` running, ``eval_queue_size`` waiting.
        self.eval_queue_size = eval_queue_size
        self.max_parallel_evals = max_parallel_evals
        self.eval_timeout = eval_timeout
        self._eval_slots = asyncio.Semaphore(max_parallel_evals)
        self._evals: dict[str, asyncio.subprocess.Process | None] = {}
        self._eval_seconds = 10.0  # running mean of recent evaluations, for the retry hint
        # Settings every job carries to the worker (encoder on/off, target precision...).
        self.worker_options = dict(worker_options or {})
        # A spare worker that has already imported sklearn (~1-2 s) while the
        # bot was idle, so the next job starts training at once.
        self.prestart_worker = prestart_worker
        self._spare: asyncio.subprocess.Process | None = None
        self._spare_task: asyncio.Task | None = None

    # ------------------------------------------------------------ queries --
    def active_job(self, scope: str) -> JobHandle | None:
        return self._active.get(check_scope(scope))

    def waiting(self) -> int:
        """Jobs that can't start yet because every training slot is taken."""
        return max(0, len(self._active) - self.max_parallel)

    def check_can_submit(self, scope: str) -> None:
        """Raise Busy if a job for ``scope`` exists or the queue is full."""
        if self._closed:
            raise Busy(_SHUTTING_DOWN)
        current = self._active.get(check_scope(scope))
        if current is not None:
            raise Busy(Phrase("A training job (`{job}`) is already training here. Please wait for it to finish before "
                              "starting another.", job=current.id)
                       if current.state != "queued" else
                       Phrase("A training job (`{job}`) is already queued here. Please wait for it to finish before "
                              "starting another.", job=current.id))
        if len(self._active) + 1 - self.max_parallel > self.queue_size:
            raise Busy(Phrase("The training queue is full ({count} waiting). Please try again in a few minutes.",
                              count=self.queue_size))

    # ------------------------------------------------------------- submit --
    def submit(
        self,
        scope: str,
        dataset: str,
        examples: list[Example],
        on_status: StatusCallback | None = None,
    ) -> JobHandle:
        """Queue a job and return immediately; raises Busy if it can't queue."""
        scope = check_scope(scope)
        self.check_can_submit(scope)
        job_id = secrets.token_hex(3)
        while any(j.id == job_id for j in self._active.values()):
            job_id = secrets.token_hex(3)
        job = JobHandle(id=job_id, scope=scope, dataset=dataset, rows=len(examples))
        ahead = len(self._active)
        self._active[scope] = job
        request = {
            **self.worker_options, "kind": "train",
            "models_dir": str(self.models_dir), "scope": scope, "job_id": job_id,
            "keep": self.keep_versions, "dataset": dataset,
            "examples": [[e.text, e.label, e.response] for e in examples],
        }
        job.done = asyncio.create_task(self._run(job, request, on_status, ahead), name=f"train-{job_id}")
        return job

    # ---------------------------------------------------------------- run --
    async def _emit(self, job: JobHandle, callback: StatusCallback | None, status: JobStatus) -> None:
        job.last_status = status
        if callback is None:
            return
        try:
            await callback(status)
        except Exception:  # a failing chat message must not kill the job
            log.exception("status callback failed for job %s", job.id)

    async def _run(
        self, job: JobHandle, request: dict[str, Any], on_status: StatusCallback | None, ahead: int
    ) -> JobStatus:
        queued = Phrase("queued ({count} job(s) ahead).", count=ahead) if ahead > 0 else Phrase("queued.")
        await self._emit(job, on_status, JobStatus(job.id, "queued", queued))
        try:
            # Encoding up to ~10 MB of JSON would stall the event loop.
            payload = (await asyncio.to_thread(json.dumps, request)).encode("utf-8")
            del request
            async with self._slots:
                job.state = "training"
                ok, info = await self._run_worker(job, payload, on_status)
        except asyncio.CancelledError:
            self._forget(job)
            raise
        except Exception as exc:
            log.exception("training job %s crashed", job.id)
            ok, info = False, {"message": Phrase("Internal error ({kind}).", kind=type(exc).__name__)}
        self._forget(job)
        if ok:
            status = JobStatus(
                job.id, "finished", finished_message(info), finished=True,
                accuracy=info.get("accuracy"), macro_f1=info.get("macro_f1"), seconds=info.get("seconds"),
            )
        else:
            reason = info.get("message") or Phrase("unknown error")
            status = JobStatus(job.id, "failed", Phrase("Training failed: {reason}", reason=reason), finished=True)
        job.state = status.state
        self._prepare_spare()
        await self._emit(job, on_status, status)
        return status

    def _forget(self, job: JobHandle) -> None:
        if self._active.get(job.scope) is job:
            del self._active[job.scope]

    async def _run_worker(
        self, job: JobHandle, payload: bytes, on_status: StatusCallback | None
    ) -> tuple[bool, dict[str, Any]]:
        proc = self._take_spare() or await self._spawn()
        job._process = proc

        heading: Phrase = Phrase("training")

        async def on_event(event: dict[str, Any]) -> None:
            nonlocal heading
            if event.get("event") == "training":
                heading = Phrase("training on {rows} examples of {classes} labels", rows=event.get("rows"),
                                 classes=event.get("classes"))
                await self._emit(job, on_status, JobStatus(job.id, "training", Phrase("{heading}…", heading=heading)))
            elif event.get("event") == "progress" and isinstance(event.get("message"), str):
                step = plain_step(event["message"])
                await self._emit(job, on_status, JobStatus(job.id, "training", Phrase("{heading}: {step}…",
                                                                                       heading=heading, step=step)))

        try:
            outcome = await _talk(proc, payload, self.timeout, on_event)
        finally:
            job._process = None
        if outcome.timed_out:
            return False, {"message": Phrase("it took longer than {took} and was stopped.", took=_duration(self.timeout))}
        result, rc = outcome.result, outcome.rc
        if rc == 0 and result is not None and Path(str(result.get("path", ""))).is_file():
            return True, result
        if outcome.stderr:
            log.warning("training worker %s stderr: %s", job.id, outcome.stderr[-2000:].decode("utf-8", "replace"))
        if outcome.failure:
            return False, {"message": _failure_message(outcome.failure)}
        if rc is not None and rc < 0:
            return False, {"message": Phrase("the training process was killed.")}
        return False, {"message": Phrase("the training process exited unexpectedly (code {code}).", code=rc)}

    # --------------------------------------------------------- evaluation --
    def check_can_evaluate(self, scope: str) -> None:
        """Raise Busy when ``scope`` is already testing or the evaluation queue is full."""
        scope = check_scope(scope)
        if self._closed:
            raise Busy(_SHUTTING_DOWN)
        if scope in self._evals:
            raise Busy(Phrase("A test is already running here. Please wait for its report before starting another."),
                       retry_after=self._eval_seconds)
        if len(self._evals) >= self.max_parallel_evals + self.eval_queue_size:
            waves = len(self._evals) // max(1, self.max_parallel_evals)
            wait = max(5.0, waves * self._eval_seconds)
            raise Busy(Phrase("I'm testing models for other servers right now ({count} waiting or running); please try "
                              "again in {wait}.", count=len(self._evals), wait=format_wait(wait)), retry_after=wait)

    async def evaluate(self, scope: str, request: dict[str, Any],
                       on_progress: Callable[[str], Awaitable[None]] | None = None) -> dict[str, Any]:
        """Run one evaluation in a worker; returns its 'finished' event.

        ``on_progress`` gets the worker's progress lines ("testing 7,177 rows: 1,280 done…").

        Raises Busy (see ``check_can_evaluate``), the worker's DatasetError /
        IncompatibleModelError / ModelError with its user message, or
        ModelError when the worker times out or dies.
        """
        scope = check_scope(scope)
        self.check_can_evaluate(scope)
        self._evals[scope] = None
        try:
            payload = (await asyncio.to_thread(json.dumps, {**self.worker_options, **request, "kind": "evaluate"}))
            async with self._eval_slots:
                if self._closed:
                    raise Busy(_SHUTTING_DOWN)
                started = time.monotonic()
                proc = self._take_spare() or await self._spawn()
                self._evals[scope] = proc
                outcome = await _talk(proc, payload.encode("utf-8"), self.eval_timeout,
                                      _progress_relay(on_progress))
                self._eval_seconds = 0.7 * self._eval_seconds + 0.3 * (time.monotonic() - started)
        finally:
            self._evals.pop(scope, None)
            self._prepare_spare()
        if outcome.timed_out:
            raise ModelError(Phrase("Testing took longer than {took} and was stopped. Please try a smaller file.",
                                    took=_duration(self.eval_timeout)))
        if outcome.rc == 0 and outcome.result is not None:
            return outcome.result
        if outcome.stderr:
            log.warning("evaluation worker stderr: %s", outcome.stderr[-2000:].decode("utf-8", "replace"))
        if outcome.failure:
            error = _USER_ERRORS.get(str(outcome.failure.get("error")), ModelError)
            raise error(_failure_message(outcome.failure))
        raise ModelError(Phrase("Testing failed unexpectedly; it has been logged."),
                         detail=f"evaluation worker exited with code {outcome.rc}")

    # ------------------------------------------------------ worker spawning --
    async def _spawn(self) -> asyncio.subprocess.Process:
        env = child_environment(_PACKAGE_ROOT)  # no DISCORD_TOKEN or other secrets
        return await asyncio.create_subprocess_exec(
            self.python, "-m", "model.train_worker",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            cwd=str(_PACKAGE_ROOT), env=env, limit=1 << 20,
        )

    def _take_spare(self) -> asyncio.subprocess.Process | None:
        spare, self._spare = self._spare, None
        if spare is not None and spare.returncode is None:
            return spare
        return None

    async def warm_up(self) -> None:
        """Optionally pre-start a worker (e.g. at bot start-up); returns once it is ready."""
        self._prepare_spare()
        if self._spare_task is not None:
            await asyncio.gather(self._spare_task, return_exceptions=True)

    def _prepare_spare(self) -> None:
        """Start a spare worker in the background when nothing is training."""
        if not self.prestart_worker or self._closed or self._spare is not None or self._active:
            return
        if self._spare_task is not None and not self._spare_task.done():
            return

        async def start() -> None:
            proc = await self._spawn()
            try:
                ready = await proc.stdout.readline()  # {"event": "ready"} once imports are done
            except BaseException:
                await _kill(proc)
                raise
            if self._closed or self._spare is not None or not ready:
                await _kill(proc)
            else:
                self._spare = proc

        self._spare_task = asyncio.create_task(start(), name="train-worker-spare")

    # -------------------------------------------------------------- close --
    async def close(self) -> None:
        """Kill running workers and cancel queued jobs."""
        self._closed = True
        if self._spare_task is not None:
            self._spare_task.cancel()  # start() kills its process when cancelled
            await asyncio.gather(self._spare_task, return_exceptions=True)
        spare = self._take_spare()
        if spare is not None:
            await _kill(spare)
        jobs = list(self._active.values())
        for job in jobs:
            if job._process is not None:
                await _kill(job._process)
        for proc in list(self._evals.values()):
            if proc is not None:
                await _kill(proc)
        tasks = [j.done for j in jobs if j.done is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        try:
            proc.kill()
        except ProcessLookupError:
            pass
    await proc.wait()


_USER_ERRORS: dict[str, type[ModelError]] = {
    "DatasetError": DatasetError, "IncompatibleModelError": IncompatibleModelError, "ModelError": ModelError,
}


_SHUTTING_DOWN = Phrase("The bot is shutting down; please try again in a minute.")

_STEPS = (  # the worker's step names, as a server admin would say them
    ("embedding ", Phrase("reading the examples with the sentence model")),
    ("cross-validation", Phrase("checking itself on examples held back")),
    ("held-out fit", Phrase("checking itself on examples held back")),
    ("final fit", Phrase("learning from every example")),
    ("saving", Phrase("saving the model")),
    ("loading the sentence model", Phrase("loading the sentence model")),
    ("training ", Phrase("getting ready")),
)


def plain_step(message: str) -> str:
    """A training step in plain words; "embedding 1,024 of 7,177 rows" keeps its count."""
    for prefix, words in _STEPS:
        if message.startswith(prefix):
            count = message[len(prefix):].removesuffix(" rows").strip()
            done, of, total = count.partition(" of ")
            return Phrase("{step} ({done} of {total})", step=words, done=done, total=total) if of else words
    return message[:100]


def _progress_relay(on_progress: Callable[[str], Awaitable[None]] | None):
    """An ``on_event`` for ``_talk`` that passes progress lines on; a failing callback never stops the job."""
    if on_progress is None:
        return None

    async def relay(event: dict[str, Any]) -> None:
        if event.get("event") == "progress" and isinstance(event.get("message"), str):
            try:
                await on_progress(event["message"][:200])
            except Exception:
                log.exception("progress callback failed")

    return relay


def _duration(seconds: float) -> Phrase:
    if seconds >= 120:
        return Phrase("{minutes:.0f} minutes", minutes=seconds / 60)
    return Phrase("{seconds:g} seconds", seconds=seconds)


def _failure_message(failure: dict[str, Any]) -> str:
    """A worker's failure message: the Phrase it sent (template and values), else its text."""
    return from_phrase_data(failure.get("phrase") or failure.get("message")) or Phrase("unknown error")


@dataclass(slots=True)
class _Outcome:
    """What one worker run said and how it ended."""

    rc: int | None = None
    result: dict[str, Any] | None = None  # the "finished" event
    failure: dict[str, Any] | None = None  # the "failed" event
    stderr: bytes = b""
    timed_out: bool = False


async def _talk(
    proc: asyncio.subprocess.Process,
    payload: bytes,
    timeout: float,
    on_event: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
) -> _Outcome:
    """Send the job, read JSON-line events until exit; kill the worker on timeout or cancel."""
    outcome = _Outcome()
    stderr_task = asyncio.create_task(proc.stderr.read())
    try:
        async with asyncio.timeout(timeout):
            try:
                proc.stdin.write(payload)
                await proc.stdin.drain()
                proc.stdin.close()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the worker died early; its exit code tells us why
            while line := await proc.stdout.readline():
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(event, dict):
                    continue
                kind = event.get("event")
                if kind == "finished":
                    outcome.result = event
                elif kind == "failed":
                    outcome.failure = event
                elif on_event is not None:
                    await on_event(event)
            outcome.rc = await proc.wait()
            outcome.stderr = await stderr_task
    except TimeoutError:
        await _kill(proc)
        outcome.timed_out = True
    except BaseException:
        await _kill(proc)
        raise
    finally:
        if not stderr_task.done():
            stderr_task.cancel()
    return outcome
