"""``!test``: score a model on user data and format the result for chat."""

from __future__ import annotations

import csv
import io
import warnings
from collections import Counter

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from .learner import TextClassifier
from .plotting import MAX_PLOT_CLASSES, confusion_png
from .types import EvalReport, Example

MAX_TABLE_ROWS = 15
MAX_TEXT_CHARS = 1800
PREVIEW_ROWS = 5
BATCH = 2000
OOS_SPELLINGS = frozenset({"oos", "out_of_scope", "out-of-scope"})


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _predict(model: TextClassifier, texts: list[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Labels, confidences and abstentions (learned threshold or out-of-scope label)."""
    labels: list[str] = []
    confidences, abstains = [], []
    for start in range(0, len(texts), BATCH):
        lab, conf, abstain = model.decide(texts[start : start + BATCH])
        labels.extend(lab)
        confidences.append(conf)
        abstains.append(abstain)
    if not confidences:
        return labels, np.zeros(0), np.zeros(0, dtype=bool)
    return labels, np.concatenate(confidences), np.concatenate(abstains)


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
) -> EvalReport:
    """Parse an uploaded test file and evaluate at most ``row_cap`` of its rows.

    Runs in the evaluation worker, so a hostile or huge upload is parsed off
    the bot process. When the cap cuts the data, the report says so first.
    """
    from .parsing import parse_dataset

    parsed = parse_dataset(data, filename, None, max_bytes=max_bytes, max_rows=max_rows, allow_unlabelled=True)
    examples = parsed.examples
    given = len(examples)
    if row_cap is not None and given > row_cap:
        examples = examples[:row_cap]
    report = evaluate_examples(model, examples, parsed.labelled)
    report.rows_given = given
    if len(examples) < given:
        note = f"(Tested the first {len(examples):,} of {given:,} rows: the row limit for this test.)"
        report.text = _fit_text([note, *report.text.split("\n")])
    return report


def evaluate_examples(model: TextClassifier, examples: list[Example], labelled: bool) -> EvalReport:
    """Metrics, table, PNG and CSV for labelled data; predictions otherwise."""
    texts = [e.text for e in examples]
    predicted, confidence, abstain = _predict(model, texts)
    if not labelled:
        return _unlabelled_report(texts, predicted, confidence, abstain)
    expected = [str(e.label) for e in examples]
    return _labelled_report(model, texts, expected, predicted, confidence, abstain)


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
        text=_fit_text(lines),
        png=png,
        csv=_csv_bytes(["text", "expected", "predicted", "confidence", "correct", "abstained"], rows),
        misclassified=misclassified,
        accuracy=accuracy,
        macro_f1=macro_f1,
        in_scope_accuracy=in_scope_accuracy,
        oos_recall=oos_recall,
        abstention_rate=abstention_rate,
        labelled=True,
        rows=len(texts),
        rows_given=len(texts),
    )
