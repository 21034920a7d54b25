"""`!test` reports: metrics, table, confusion-matrix PNG, CSV, misclassified."""

from __future__ import annotations

import csv
import io
import re

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import accuracy_score, f1_score

from model.evaluation import evaluate_examples
from tests.support.synthetic import intent_dataset
from model.training import train_model
from model.types import Example

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def trained(n_classes, seed=0, per_class=40):
    texts, labels = intent_dataset(per_class * n_classes, n_classes, seed=seed, confusion=0.3)
    return train_model([Example(t, lab) for t, lab in zip(texts, labels)]).model


def fresh(n, n_classes, seed=0):
    texts, labels = intent_dataset(n, n_classes, seed=seed, confusion=0.3, sample_seed=123)
    return [Example(t, lab) for t, lab in zip(texts, labels)]


@pytest.fixture(scope="module")
def small_model():
    return trained(4)


def test_labelled_report(small_model):
    data = fresh(200, 4)
    report = evaluate_examples(small_model, data, labelled=True)
    truth = [e.label for e in data]
    predicted = small_model.predict([e.text for e in data])
    assert report.accuracy == pytest.approx(accuracy_score(truth, predicted))
    assert report.macro_f1 == pytest.approx(f1_score(truth, predicted, average="macro"))
    assert 0.3 < report.accuracy < 1.0  # hard data: some mistakes to report
    assert re.search(rf"accuracy {report.accuracy:.3f}", report.text)
    assert "macro-F1" in report.text
    for label in set(truth):
        assert re.search(rf"^{label}\s+\d\.\d\d\s+\d\.\d\d\s+\d\.\d\d\s+50$", report.text, re.M)
    assert len(report.text) <= 1900
    assert report.misclassified == [
        (e.text, e.label, p) for e, p in zip(data, predicted) if e.label != p
    ]
    assert len(report.misclassified) == round((1 - report.accuracy) * 200)
    assert "Most confused" in report.text

    assert report.png.startswith(PNG_MAGIC)
    image = Image.open(io.BytesIO(report.png))
    image.verify()
    assert image.format == "PNG" and image.width >= 300

    rows = list(csv.DictReader(io.StringIO(report.csv.decode())))
    assert len(rows) == 200 and rows[0].keys() == {"text", "expected", "predicted", "confidence", "correct", "abstained"}
    assert sum(int(r["correct"]) for r in rows) == 200 - len(report.misclassified)


def test_many_classes_plot_top_20_and_keep_text_short():
    model = trained(25, seed=1, per_class=20)
    data = fresh(250, 25, seed=1)
    report = evaluate_examples(model, data, labelled=True)
    assert report.png.startswith(PNG_MAGIC)
    assert Image.open(io.BytesIO(report.png)).width >= 600
    assert "15 weakest of 25" in report.text
    assert "Most confused" in report.text
    assert len(report.text) <= 1900


def test_unseen_labels_are_called_out(small_model):
    data = fresh(20, 4) + [Example("something else entirely", "brand_new")]
    report = evaluate_examples(small_model, data, labelled=True)
    assert "never saw" in report.text and "brand_new" in report.text
    assert ("something else entirely", "brand_new", small_model.predict(["something else entirely"])[0]) in report.misclassified


def test_unlabelled_gives_preview_and_full_csv(small_model):
    data = [Example(e.text, None) for e in fresh(12, 4)]
    report = evaluate_examples(small_model, data, labelled=False)
    assert report.accuracy is None and report.png is None and not report.misclassified
    assert "Predicted 12 message(s)" in report.text and "7 more" in report.text
    rows = list(csv.DictReader(io.StringIO(report.csv.decode())))
    assert [r["text"] for r in rows] == [e.text for e in data]
    assert [r["predicted"] for r in rows] == small_model.predict([e.text for e in data])
    assert all(0 < float(r["confidence"]) <= 1 for r in rows)
    unsure = sum(r["abstained"] == "1" for r in rows)
    np.testing.assert_equal(len(report.text.splitlines()), 1 + 5 + 1 + 1 + (unsure > 0))
    if unsure:
        assert f"Not sure (would not answer): {unsure} of {len(rows)}" in report.text


def test_a_spent_budget_reports_a_random_sample_in_upload_order(small_model):
    """The time budget ran out after the first batch: a random sample is scored, and the report says so."""
    from model.evaluation import FIRST_BATCH, Budget, evaluate_upload

    data = fresh(600, 4)
    raw = "text,label\n" + "".join(f"{e.text},{e.label}\n" for e in data)
    lines = []
    report = evaluate_upload(small_model, raw, "t.csv", max_bytes=10**7, max_rows=10**5,
                             budget=Budget(0.0, lines.append))
    assert report.rows == FIRST_BATCH and report.rows_given == 600
    assert f"random sample of {FIRST_BATCH} of 600 rows" in report.text and "19 times in 20" in report.text
    table = list(csv.DictReader(io.StringIO(report.csv.decode())))
    position = {" ".join(e.text.split()): i for i, e in enumerate(data)}
    rows = [position[" ".join(r["text"].split())] for r in table]
    assert rows == sorted(rows) and rows[-1] - rows[0] > 300  # spread over the file, in its order
    assert lines[0] == "reading the file…" and lines[1] == "testing 600 rows…"


def test_without_a_budget_every_row_is_scored_and_progress_is_told(small_model):
    from model.evaluation import Budget, evaluate_upload

    data = fresh(300, 4)
    raw = "text,label\n" + "".join(f"{e.text},{e.label}\n" for e in data)
    lines = []
    budget = Budget(None, lines.append)
    budget.say = lambda message, force=False: lines.append(message)  # every line, not one per 2 s
    report = evaluate_upload(small_model, raw, "t.csv", max_bytes=10**7, max_rows=10**5, budget=budget)
    assert report.rows == 300 and "random sample" not in report.text
    assert lines[-1] == "testing 300 rows: 300 done…" and any("128 done" in line for line in lines)


def test_the_report_applies_the_same_floor_as_chat(small_model):
    """CONFIDENCE_THRESHOLD reaches !test: a floor of 1.0 makes every row "not sure"."""
    data = fresh(40, 4)
    report = evaluate_examples(small_model, data, labelled=True, floor=1.0)
    table = list(csv.DictReader(io.StringIO(report.csv.decode())))
    assert all(r["abstained"] == "1" for r in table)
