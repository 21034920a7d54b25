"""``!test``: score a model on user data and format the result for chat."""

from __future__ import annotations

import csv
import io
import math
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from .learner import TextClassifier
from .parsing import parse_dataset
from .plotting import MAX_PLOT_CLASSES, confusion_png
from .types import EvalReport, Example

MAX_TABLE_ROWS = 15
MAX_TEXT_CHARS = 1800
PREVIEW_ROWS = 5
FIRST_BATCH = 128  # four encoder batches of 32: it runs two at a time only from four (model/encoder.py)
MAX_BATCH = 2000
BATCH_SECONDS = 1.0
PROGRESS_EVERY = 2.0  # seconds between progress lines (the status message is edited at least every 5 s)
OOS_SPELLINGS = frozenset({"oos", "out_of_scope", "out-of-scope"})


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


@dataclass(slots=True)
class Scored:
    """The rows scored (indices into the upload, in upload order) and their decisions."""

    rows: np.ndarray
    labels: list[str]
    probability: np.ndarray
    abstain: np.ndarray
    sampled: bool = False  # the time budget ran out: ``rows`` is a random sample


class Budget:
    """When scoring must stop, and a progress line at least every PROGRESS_EVERY seconds."""

    def __init__(self, seconds: float | None, progress: Callable[[str], None] | None = None,
                 started: float | None = None) -> None:
        self.seconds = seconds
        self.progress = progress or (lambda _msg: None)
        self.started = time.monotonic() if started is None else started
        self._said = 0.0

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def say(self, message: str, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._said >= PROGRESS_EVERY:
            self._said = now
            self.progress(message)


def score_rows(model: TextClassifier, texts: list[str], floor: float = 0.0, budget: Budget | None = None) -> Scored:
    """Decide every row with the one rule chat uses (``hybrid.decide_rows``), in timed batches.

    Rows go in a fixed random order, in batches sized to take about a
    second, so progress is reported steadily. When the next batch would end
    past the budget, scoring stops: the rows done so far are a uniform random
    sample of the upload, which is what the report then describes. Measured
    (bench/model.py): the sentence encoder reads ~90 rows/s of 1-4 KB reviews
    here (it truncates each to 128 tokens), so 7,177 of them would take 80 s;
    a 20 s budget scores ~1,600, enough for accuracy within about 2 points.
    """
    budget = budget or Budget(None)
    n = len(texts)
    order = np.random.default_rng(0).permutation(n) if n else np.zeros(0, dtype=int)
    labels: list[str] = []
    probability, abstain = [], []
    done, size, sampled = 0, FIRST_BATCH, False
    while done < n:
        batch = order[done : done + size]
        started = time.monotonic()
        d = model.decisions([texts[i] for i in batch], floor)
        took = max(1e-6, time.monotonic() - started)
        labels.extend(d.labels)
        probability.append(d.probability)
        abstain.append(d.abstain)
        done += len(batch)
        rate = len(batch) / took
        size = int(min(MAX_BATCH, max(FIRST_BATCH, rate * BATCH_SECONDS)))
        budget.say(f"testing {n:,} rows: {done:,} done…")
        if done < n and budget.seconds is not None and budget.elapsed() + min(size, n - done) / rate > budget.seconds:
            sampled = True
            break
    if not labels:
        return Scored(np.zeros(0, dtype=int), [], np.zeros(0), np.zeros(0, dtype=bool))
    rows = order[:done]
    keep = np.argsort(rows, kind="stable")  # back to upload order
    return Scored(rows[keep], [labels[i] for i in keep], np.concatenate(probability)[keep],
                  np.concatenate(abstain)[keep], sampled)


def is_oos_label(label: str, model) -> bool:
    """An expected label meaning "out of scope": the model's own, or a usual spelling."""
    own = getattr(model, "oos_label", None)
    return (own is not None and label == own) or label.casefold() in OOS_SPELLINGS


def _csv_bytes(header: list[str], rows: list[list[object]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


def _fit_text(lines: list[str]) -> str:
    """Join lines, dropping from the end so the report fits in one message."""
    out: list[str] = []
    total = 0
    for line in lines:
        if total + len(line) + 1 > MAX_TEXT_CHARS:
            out.append("…")
            break
        out.append(line)
        total += len(line) + 1
    return "\n".join(out)


def evaluate_upload(
    model: TextClassifier,
    data: bytes | str,
    filename: str | None,
    *,
    max_bytes: int,
    max_rows: int,
    row_cap: int | None = None,
    floor: float = 0.0,
    budget: Budget | None = None,
) -> EvalReport:
    """Parse an uploaded test file and evaluate at most ``row_cap`` of its rows.

    Runs in the evaluation worker, so a hostile or huge upload is parsed off
    the bot process. When the cap cuts the data, or the time budget leaves a
    random sample, the report says so first.
    """
    budget = budget or Budget(None)
    budget.say("reading the file…", force=True)
    parsed = parse_dataset(data, filename, None, max_bytes=max_bytes, max_rows=max_rows, allow_unlabelled=True)
    examples = parsed.examples
    given = len(examples)
    if row_cap is not None and given > row_cap:
        examples = examples[:row_cap]
    budget.say(f"testing {len(examples):,} rows…", force=True)
    report = evaluate_examples(model, examples, parsed.labelled, floor=floor, budget=budget)
    report.rows_given = given
    notes = []
    if len(examples) < given:
        notes.append(f"(Tested the first {len(examples):,} of {given:,} rows: the row limit for this test.)")
    if report.rows < len(examples):
        notes.append(_sample_note(report, len(examples), budget))
    if notes:
        report.text = _fit_text([*notes, *report.text.split("\n")])
    return report


def _sample_note(report: EvalReport, total: int, budget: Budget) -> str:
    note = (f"(Tested a random sample of {report.rows:,} of {total:,} rows: the whole file would take longer than "
            f"the {budget.seconds:g} s a test may spend.")
    if report.accuracy is not None and report.rows:
        p = (report.accuracy * report.rows + 2) / (report.rows + 4)  # Agresti-Coull: sane at 0 % and 100 %
        margin = 1.96 * math.sqrt(p * (1 - p) / (report.rows + 4))
        note += f" The accuracy of the whole file is within ±{margin:.1%} of this, 19 times in 20."
    return note + ")"


def evaluate_examples(model: TextClassifier, examples: list[Example], labelled: bool, *, floor: float = 0.0,
                      budget: Budget | None = None) -> EvalReport:
    """Metrics, table, PNG and CSV for labelled data; predictions otherwise."""
    scored = score_rows(model, [e.text for e in examples], floor, budget)
    texts = [examples[i].text for i in scored.rows]
    if not labelled:
        return _unlabelled_report(texts, scored.labels, scored.probability, scored.abstain)
    expected = [str(examples[i].label) for i in scored.rows]
    return _labelled_report(model, texts, expected, scored.labels, scored.probability, scored.abstain)


def _unlabelled_report(
    texts: list[str], predicted: list[str], confidence: np.ndarray, abstain: np.ndarray
) -> EvalReport:
    counts = Counter(predicted)
    lines = [f"Predicted {len(texts)} message(s) (no labels given, so no accuracy):"]
    for text, label, conf, no in list(zip(texts, predicted, confidence, abstain))[:PREVIEW_ROWS]:
        lines.append(f"  {_clip(label, 20)} ({conf:.2f}){' not sure' if no else ''}  {_clip(text, 60)}")
    if len(texts) > PREVIEW_ROWS:
        lines.append(f"  … and {len(texts) - PREVIEW_ROWS} more in the attached CSV.")
    lines.append("Labels: " + ", ".join(f"{_clip(k, 20)} {v}" for k, v in counts.most_common(8)))
    if abstain.any():
        lines.append(f"Not sure (would not answer): {int(abstain.sum())} of {len(texts)} ({abstain.mean():.1%}).")
    rows = [[t, p, f"{c:.4f}", int(a)] for t, p, c, a in zip(texts, predicted, confidence, abstain)]
    return EvalReport(
        text=_fit_text(lines),
        csv=_csv_bytes(["text", "predicted", "confidence", "abstained"], rows),
        labelled=False,
        rows=len(texts),
        rows_given=len(texts),
    )


def _labelled_report(
    model: TextClassifier, texts: list[str], expected: list[str], predicted: list[str], confidence: np.ndarray,
    abstain: np.ndarray,
) -> EvalReport:
    accuracy = float(accuracy_score(expected, predicted))
    macro_f1 = float(f1_score(expected, predicted, average="macro", zero_division=0))
    classes = sorted(set(expected))
    prec, rec, f1, support = precision_recall_fscore_support(
        expected, predicted, labels=classes, zero_division=0
    )
    lines = [
        f"accuracy {accuracy:.3f}   macro-F1 {macro_f1:.3f}   ({len(texts)} examples, {len(classes)} labels)",
    ]
    oos = np.array([is_oos_label(e, model) for e in expected], dtype=bool)
    in_scope_accuracy = oos_recall = abstention_rate = None
    if oos.any():
        right = np.array([e == p for e, p in zip(expected, predicted)], dtype=bool) & ~abstain
        in_scope_accuracy = float(right[~oos].mean()) if (~oos).any() else None
        oos_recall = float(abstain[oos].mean())
        abstention_rate = float(abstain.mean())
        shown = f"{in_scope_accuracy:.3f}" if in_scope_accuracy is not None else "n/a"
        lines.append(
            f"in-scope accuracy {shown} (a \"not sure\" counts as wrong)   out-of-scope recall {oos_recall:.3f} "
            f"({int(oos.sum())} out-of-scope rows)   not sure on {abstention_rate:.1%} of all rows"
        )
    elif abstain.any():
        lines.append(f"Not sure (would not answer) on {int(abstain.sum())} rows ({abstain.mean():.1%}).")
    unknown = sorted(set(classes) - {str(c) for c in model.classes_})
    if unknown:
        lines.append(
            f"{len(unknown)} label(s) the model never saw, so always wrong: " + ", ".join(_clip(u, 20) for u in unknown[:5])
        )
    width = min(20, max(5, *(len(c) for c in classes)))
    lines.append(f"{'label':<{width}}  prec   rec    f1     n")
    order = range(len(classes)) if len(classes) <= MAX_TABLE_ROWS else np.argsort(f1, kind="stable")[:MAX_TABLE_ROWS]
    for i in order:
        lines.append(f"{_clip(classes[i], width):<{width}}  {prec[i]:.2f}   {rec[i]:.2f}   {f1[i]:.2f}  {support[i]:>4}")
    if len(classes) > MAX_TABLE_ROWS:
        lines.append(f"(showing the {MAX_TABLE_ROWS} weakest of {len(classes)} labels; all rows are in the CSV)")

    pairs = Counter((e, p) for e, p in zip(expected, predicted) if e != p)
    if pairs:
        lines.append("Most confused (expected → predicted):")
        for (e, p), n in pairs.most_common(5):
            lines.append(f"  {_clip(e, 20)} → {_clip(p, 20)}: {n}")

    plot_labels = sorted(set(expected) | set(predicted))
    title = "Confusion matrix"
    if len(plot_labels) > MAX_PLOT_CLASSES:
        top = [c for c, _ in Counter(expected).most_common(MAX_PLOT_CLASSES)]
        plot_labels = sorted(top)
        title = f"Confusion matrix: {MAX_PLOT_CLASSES} most frequent of {len(classes)} labels"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # single-label data is fine here
        matrix = confusion_matrix(expected, predicted, labels=plot_labels)
    png = confusion_png(matrix, plot_labels, title)

    misclassified = [(t, e, p) for t, e, p in zip(texts, expected, predicted) if e != p]
    rows = [[t, e, p, f"{c:.4f}", int(e == p), int(a)]
            for t, e, p, c, a in zip(texts, expected, predicted, confidence, abstain)]
    return EvalReport(
        text=_fit_text(lines), png=png, misclassified=misclassified,
        csv=_csv_bytes(["text", "expected", "predicted", "confidence", "correct", "abstained"], rows),
        accuracy=accuracy, macro_f1=macro_f1, in_scope_accuracy=in_scope_accuracy, oos_recall=oos_recall,
        abstention_rate=abstention_rate, labelled=True, rows=len(texts), rows_given=len(texts),
    )
