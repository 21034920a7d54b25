"""Worker process for training and evaluation: ``python -m model.train_worker``.

A separate process keeps the bot's event loop responsive (training holds
the GIL for seconds), keeps untrusted uploads out of the bot process, and
lets the bot kill a stuck job. Protocol: one JSON object on stdin, JSON
lines on stdout ({"event": "ready" | "training" | "progress" | "finished" |
"failed", ...}).

- ``"kind": "train"`` (the default): {"models_dir", "scope", "job_id",
  "keep", "dataset", "examples": [[text, label, response], ...]}; the first
  four may instead be command-line options. The model is written
  atomically, so a killed worker never leaves a partial or replaced model.
- ``"kind": "evaluate"``: {"model_path", "data_b64", "filename",
  "max_bytes", "max_rows", "row_cap", "out_dir", "floor", "budget"}: parses
  the upload, scores it (progress events on the way; a random sample when the
  ``budget`` in seconds runs out) and writes the report into ``out_dir``
  (see ``reportio``).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from errors import phrase_data

from .errors import ModelError
from .modelstore import remove_stale_temp_files, write_model
from .embedcache import cache_path
from .encoder import set_enabled as set_encoder_enabled
from .splits import CV_FOLDS
from .training import TrainOptions, train_model
from .types import Example

EXIT_OK, EXIT_CRASH, EXIT_USER_ERROR = 0, 1, 2


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def run(models_dir: Path, scope: str, job_id: str, keep: int, payload: dict[str, Any]) -> dict[str, Any]:
    """Train on ``payload`` and save the model; returns the saved metadata."""
    examples = [Example(str(r[0]), str(r[1]), (str(r[2]) if len(r) > 2 and r[2] else None)) for r in payload["examples"]]
    remove_stale_temp_files(models_dir, scope)
    options = TrainOptions(
        encoder=bool(payload.get("encoder", False)),
        target_precision=float(payload.get("target_precision", 0.9)),
        oos_labels=tuple(str(x) for x in payload.get("oos_labels", ("oos", "out_of_scope"))),
        embed_cache=cache_path(models_dir, scope),
        embed_cache_bytes=int(payload.get("embedding_cache_bytes", 32 * 1024 * 1024)),
    )
    result = train_model(examples, progress=lambda msg: emit("progress", message=msg), options=options)
    meta = {
        "job_id": job_id,
        "dataset": payload.get("dataset"),
        "rows": result.rows,
        "classes": result.classes,
        "labels": sorted(str(c) for c in result.model.classes_),
        "accuracy": result.accuracy,
        "macro_f1": result.macro_f1,
        "eval_rows": result.eval_rows,
        "eval_method": result.eval_method,
        "cv_folds": CV_FOLDS,
        "learner": result.learner,
        "candidates": result.candidates,
        "threshold": result.threshold,
        "precision": result.precision,
        "coverage": result.coverage,
        "oos_label": result.oos_label,
        "embedded": result.embedded,
        "encoder": result.encoder_used,
        "encoder_name": result.encoder_name if result.encoder_used else None,
        "language": result.language,
        "duplicates_removed": result.duplicates_removed,
        "responses": result.responses,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    emit("progress", message="saving")
    started = time.perf_counter()
    path = write_model(models_dir, scope, result.model, {**meta, "seconds": result.seconds}, keep=keep)
    meta["seconds"] = result.seconds + (time.perf_counter() - started)
    meta["path"] = str(path)
    return meta


def run_evaluation(payload: dict[str, Any]) -> dict[str, Any]:
    """Score the upload in ``payload`` with the saved model; the report goes to files.

    Progress lines go out at least every few seconds; scoring stops at the
    ``budget`` (seconds since the job arrived) and reports a random sample.
    """
    from .evaluation import Budget, evaluate_upload
    from .modelstore import load_model
    from .reportio import write_report

    budget_seconds = payload.get("budget")
    budget = Budget(float(budget_seconds) if budget_seconds else None, lambda msg: emit("progress", message=msg))
    model, _meta = load_model(Path(payload["model_path"]))
    cap = payload.get("row_cap")
    report = evaluate_upload(
        model, base64.b64decode(payload["data_b64"]), payload.get("filename"),
        max_bytes=int(payload["max_bytes"]), max_rows=int(payload["max_rows"]),
        row_cap=int(cap) if cap is not None else None, floor=float(payload.get("floor") or 0.0), budget=budget,
    )
    path = write_report(report, Path(payload["out_dir"]))
    return {"report": str(path), "rows": report.rows, "rows_given": report.rows_given}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models-dir", type=Path)
    parser.add_argument("--scope")
    parser.add_argument("--job-id")
    parser.add_argument("--keep", type=int)
    args = parser.parse_args(argv)
    emit("ready")  # libraries are imported; a pre-started worker now waits for its job
    try:
        # A pre-started worker blocks here with everything already imported;
        # job settings may come in the payload because they weren't known yet.
        payload = json.load(sys.stdin)
        set_encoder_enabled(bool(payload.get("encoder", False)), cache_dir=payload.get("encoder_cache_dir"))
        if payload.get("kind") == "evaluate":
            emit("finished", **run_evaluation(payload))
            return EXIT_OK
        models_dir = Path(payload.get("models_dir") or args.models_dir)
        scope = str(payload.get("scope") or args.scope)
        job_id = str(payload.get("job_id") or args.job_id)
        keep = int(payload.get("keep") or args.keep or 3)
        labels = {r[1] for r in payload["examples"]}
        emit("training", rows=len(payload["examples"]), classes=len(labels))
        meta = run(models_dir, scope, job_id, keep, payload)
    except ModelError as exc:
        emit("failed", message=exc.user_message, phrase=phrase_data(exc.user_message), error=type(exc).__name__)
        return EXIT_USER_ERROR
    except Exception as exc:  # report, don't hide: the parent logs stderr too
        emit("failed", message=f"Training crashed unexpectedly ({type(exc).__name__}).")
        print(repr(exc), file=sys.stderr)
        return EXIT_CRASH
    emit("finished", **{k: v for k, v in meta.items() if k not in ("responses", "labels")})
    return EXIT_OK


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # The model is already fsynced; skipping interpreter teardown (freeing the
    # big matrices and modules) saves ~0.3 s before the job counts as finished.
    os._exit(status)
