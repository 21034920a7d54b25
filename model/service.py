"""Async facade used by the Discord commands.

Every blocking step (file I/O, parsing, unpickling, prediction, plotting) is
a plain function elsewhere in the package; here they run via
``asyncio.to_thread``; training and evaluation run in worker processes.
"""

from __future__ import annotations

import asyncio
import base64
import shutil
import tempfile
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from errors import Phrase

from .datastore import DatasetStore
from .encoder import set_enabled as set_encoder_enabled
from .errors import Busy, DatasetError, IncompatibleModelError, ModelError, NoModelError
from .jobs import JobHandle, JobManager, StatusCallback
from .modelstore import latest_version, list_versions, read_meta
from .names import check_scope, sanitize_name
from .parsing import too_big
from .predictor import DEFAULT_CACHE_BYTES, ModelCache
from .reportio import read_report
from .types import DatasetInfo, EvalReport, Example, JobStatus, Prediction
from .validation import require_trainable

__all__ = [
    "Busy", "DatasetError", "DatasetInfo", "EvalReport", "IncompatibleModelError", "JobHandle",
    "JobStatus", "ModelError", "ModelService", "NoModelError", "Prediction",
]


TEST_SCORING_SHARE = 0.6
NO_MODEL_YET = Phrase("There's no trained model here yet. Upload a dataset and run `!train` first.")


class ModelService:
    """Datasets, training jobs, prediction and evaluation for every scope."""

    def __init__(
        self, data_dir: Path, max_dataset_bytes: int = 10_000_000, max_dataset_rows: int = 200_000,
        train_queue_size: int = 4, keep_versions: int = 3, *,
        # training and evaluation jobs
        max_parallel_trainings: int = 1, train_timeout: float = 900.0, prestart_worker: bool = True,
        eval_queue_size: int = 4, eval_timeout: float = 300.0, test_budget: float | None = None,
        # datasets and caches
        max_datasets_per_scope: int = 20, max_dataset_bytes_per_scope: int = 50 * 1024 * 1024,
        model_cache_bytes: int = DEFAULT_CACHE_BYTES, embedding_cache_bytes: int = 32 * 1024 * 1024,
        # the model
        use_encoder: bool = True, encoder_cache_dir: Path | None = None, target_precision: float = 0.9,
        oos_labels: Iterable[str] = ("oos", "out_of_scope"), confidence_floor: float = 0.0,
    ) -> None:
        self.data_dir = Path(data_dir)
        # The encoder itself loads on the first message to a model that needs it, never here.
        encoder_cache = Path(encoder_cache_dir) if encoder_cache_dir is not None else self.data_dir / "encoder-cache"
        set_encoder_enabled(use_encoder, cache_dir=encoder_cache)
        self.models_dir = self.data_dir / "models"
        self.store = DatasetStore(
            self.data_dir, max_bytes=max_dataset_bytes, max_rows=max_dataset_rows,
            max_datasets=max_datasets_per_scope, max_scope_bytes=max_dataset_bytes_per_scope,
        )
        # Seconds of a !test spent scoring before it reports a random sample; the rest of eval_timeout is
        # for starting the worker, parsing and the report (measured: 4-6 s for a 10 MB file).
        self.test_budget = TEST_SCORING_SHARE * eval_timeout if test_budget is None else test_budget
        self.confidence_floor = float(confidence_floor)  # CONFIDENCE_THRESHOLD, the same in chat and !test
        self.cache = ModelCache(self.models_dir, max_bytes=model_cache_bytes, floor=self.confidence_floor)
        self.jobs = JobManager(
            self.models_dir, queue_size=train_queue_size, keep_versions=keep_versions,
            max_parallel=max_parallel_trainings, timeout=train_timeout, prestart_worker=prestart_worker,
            eval_queue_size=eval_queue_size, eval_timeout=eval_timeout,
            worker_options={
                "encoder": bool(use_encoder), "encoder_cache_dir": str(encoder_cache),
                "target_precision": float(target_precision),
                "oos_labels": [str(x) for x in oos_labels], "embedding_cache_bytes": int(embedding_cache_bytes),
            },
        )

    # ----------------------------------------------------------- datasets --
    async def save_dataset(self, scope: str, filename: str | None, data: bytes | str,
                           default_label: str | None = None, name: str | None = None) -> DatasetInfo:
        return await asyncio.to_thread(self.store.save, scope, filename, data, default_label, name)

    async def add_example(self, scope: str, dataset_name: str, label: str, text: str) -> DatasetInfo:
        return await asyncio.to_thread(self.store.add_example, scope, dataset_name, label, text)

    async def list_datasets(self, scope: str) -> list[DatasetInfo]:
        return await asyncio.to_thread(self.store.list, scope)

    async def dataset_exists(self, scope: str, name: str) -> bool:
        return await asyncio.to_thread(self.store.exists, scope, name)

    async def load_dataset(self, scope: str, name: str) -> list[Example]:
        return await asyncio.to_thread(self.store.load, scope, name)

    async def delete_dataset(self, scope: str, name: str) -> bool:
        return await asyncio.to_thread(self.store.delete, scope, name)

    # ----------------------------------------------------------- training --
    async def train(
        self,
        scope: str,
        dataset_name: str,
        extra_examples: Iterable[tuple[str, str]] = (),
        on_status: StatusCallback | None = None,
    ) -> JobHandle:
        """Queue training and return at once; progress goes to ``on_status``."""
        scope = check_scope(scope)
        self.jobs.check_can_submit(scope)  # fail fast before reading files
        name = sanitize_name(dataset_name)
        extras = [Example(str(t).strip(), str(lab).strip()) for t, lab in extra_examples]
        extras = [e for e in extras if e.text and e.label]
        examples = await asyncio.to_thread(self.store.load, scope, name)
        examples = examples + extras
        require_trainable(examples)
        return self.jobs.submit(scope, name, examples, on_status)

    def active_job(self, scope: str) -> JobHandle | None:
        return self.jobs.active_job(scope)

    # ---------------------------------------------------------- inference --
    async def predict(self, scope: str, text: str) -> Prediction | None:
        """Best label for ``text``; None when the scope has no model yet."""
        return await asyncio.to_thread(self.cache.predict, check_scope(scope), text)

    async def model_info(self, scope: str) -> dict[str, Any] | None:
        """Metadata of the current model (dataset, metrics, versions...)."""

        def read() -> dict[str, Any] | None:
            path = latest_version(self.models_dir, scope)
            if path is None:
                return None
            meta = read_meta(path)
            meta["versions"] = len(list_versions(self.models_dir, scope))
            return meta

        return await asyncio.to_thread(read)

    async def check_can_evaluate(self, scope: str) -> None:
        """Raise Busy or NoModelError now if ``scope`` can't test (before anything is downloaded)."""
        scope = check_scope(scope)
        self.jobs.check_can_evaluate(scope)
        if await asyncio.to_thread(latest_version, self.models_dir, scope) is None:
            raise NoModelError(NO_MODEL_YET)

    async def evaluate(
        self, scope: str, data: bytes | str, filename: str | None = None, *, max_rows: int | None = None,
        on_progress: Callable[[str], Awaitable[None]] | None = None,
    ) -> EvalReport:
        """Accuracy report for labelled data, predictions for unlabelled data.

        Parsing and scoring run in a worker process (bounded queue, timeout),
        not in the bot. ``max_rows`` caps the rows evaluated (the report says
        when it cut the data); None means the dataset row limit only.
        """
        scope = check_scope(scope)
        self.jobs.check_can_evaluate(scope)  # fail fast, before any copying
        path = await asyncio.to_thread(latest_version, self.models_dir, scope)
        if path is None:
            raise NoModelError(NO_MODEL_YET)
        raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
        if len(raw) > self.store.max_bytes:  # same refusal the parser gives, without shipping the bytes
            raise DatasetError(too_big(len(raw), self.store.max_bytes))
        if max_rows is not None and max_rows < 1:
            raise ValueError("max_rows must be at least 1")
        out_dir = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="eval-"))
        try:
            request = {
                "model_path": str(path), "data_b64": base64.b64encode(raw).decode("ascii"), "filename": filename,
                "max_bytes": self.store.max_bytes, "max_rows": self.store.max_rows, "row_cap": max_rows,
                "floor": self.confidence_floor, "budget": self.test_budget,
                "out_dir": str(out_dir),
            }
            del raw
            await self.jobs.evaluate(scope, request, on_progress)
            return await asyncio.to_thread(read_report, out_dir)
        finally:
            await asyncio.to_thread(shutil.rmtree, out_dir, True)

    async def warm_up(self) -> None:
        """Pre-start a training worker so the first `!train` skips library start-up."""
        await self.jobs.warm_up()

    async def close(self) -> None:
        """Stop running training processes; safe to call twice."""
        await self.jobs.close()
