"""An EvalReport as files in a private folder: how the evaluation worker hands it back.

A report can hold a multi-megabyte CSV and 200,000 misclassified rows; files
keep that out of the JSON-lines pipe and let the bot read them off the loop.
"""

from __future__ import annotations

import json
from pathlib import Path

from .types import EvalReport

_META, _PNG, _CSV = "report.json", "confusion.png", "predictions.csv"


def write_report(report: EvalReport, folder: Path) -> Path:
    """Write ``report`` into ``folder`` (which must exist); returns the metadata file."""
    folder = Path(folder)
    if report.png is not None:
        (folder / _PNG).write_bytes(report.png)
    if report.csv is not None:
        (folder / _CSV).write_bytes(report.csv)
    meta = {
        "text": report.text, "misclassified": [list(m) for m in report.misclassified],
        "accuracy": report.accuracy, "macro_f1": report.macro_f1, "labelled": report.labelled,
        "rows": report.rows, "rows_given": report.rows_given,
        "in_scope_accuracy": report.in_scope_accuracy, "oos_recall": report.oos_recall,
        "abstention_rate": report.abstention_rate,
        "png": report.png is not None, "csv": report.csv is not None,
    }
    path = folder / _META
    path.write_text(json.dumps(meta), encoding="utf-8")
    return path


def read_report(folder: Path) -> EvalReport:
    """The report ``write_report`` left in ``folder``."""
    folder = Path(folder)
    meta = json.loads((folder / _META).read_text(encoding="utf-8"))
    return EvalReport(
        text=str(meta["text"]),
        png=(folder / _PNG).read_bytes() if meta.get("png") else None,
        csv=(folder / _CSV).read_bytes() if meta.get("csv") else None,
        misclassified=[(str(a), str(b), str(c)) for a, b, c in meta.get("misclassified", [])],
        accuracy=meta.get("accuracy"),
        macro_f1=meta.get("macro_f1"),
        labelled=bool(meta.get("labelled")),
        rows=int(meta.get("rows", 0)),
        rows_given=int(meta.get("rows_given", 0)),
        in_scope_accuracy=meta.get("in_scope_accuracy"),
        oos_recall=meta.get("oos_recall"),
        abstention_rate=meta.get("abstention_rate"),
    )
