"""ModelService end to end: the API the Discord commands call."""

from __future__ import annotations

import asyncio
import csv
import io

import pytest

from model.errors import Busy, DatasetError, IncompatibleModelError, ModelError, NoModelError
from model.modelstore import latest_version
from model.service import ModelService
from tests.support.synthetic import intent_dataset

FAQ = [
    ("when do you open", "hours", "We open at 9."),
    ("what are your opening hours", "hours", "We open at 9."),
    ("are you open on sunday", "hours", "We open at 9."),
    ("what time do you close", "hours", "We open at 9."),
    ("where is the shop", "location", "Main Street 1."),
    ("how do i find you", "location", "Main Street 1."),
    ("what is your address", "location", "Main Street 1."),
    ("is there parking near the shop", "location", "Main Street 1."),
    ("can i pay by card", "payment", "Cards are fine."),
    ("do you take cash", "payment", "Cards are fine."),
    ("which payment methods do you accept", "payment", "Cards are fine."),
    ("can i pay with my phone", "payment", "Cards are fine."),
]


def faq_csv() -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["question", "intent", "answer"])
    w.writerows(FAQ)
    return buf.getvalue().encode()


@pytest.fixture
async def svc(tmp_path):
    # TF-IDF only: the encoder path has its own tests below and in tests/unit/test_model_encoder.py.
    service = ModelService(tmp_path, max_dataset_rows=5_000, train_queue_size=2, prestart_worker=False,
                           use_encoder=False)
    yield service
    await service.close()


async def train_and_wait(svc, scope, name, extra=()):
    statuses = []

    async def on_status(status):
        statuses.append(status)

    job = await svc.train(scope, name, list(extra), on_status)
    final = await job.done
    return final, statuses


@pytest.mark.slow
async def test_full_flow_with_responses(svc):
    assert await svc.predict("g1", "hello") is None
    info = await svc.save_dataset("g1", "FAQ.csv", faq_csv(), None)
    assert (info.name, info.rows, info.classes, info.shared) == ("faq", 12, 3, False)
    assert await svc.dataset_exists("g1", "faq") and not await svc.dataset_exists("g2", "faq")
    assert [d.name for d in await svc.list_datasets("g1")] == ["faq"]

    final, statuses = await train_and_wait(svc, "g1", "faq", [("do you accept bitcoin", "payment")])
    states = [s.state for s in statuses]
    assert states[0] == "queued" and states[-1] == "finished" and set(states[1:-1]) == {"training"}, states
    assert "training on 13 examples of 3 labels" in statuses[1].message
    steps = [s.message for s in statuses[2:-1]]  # each step of the worker, in plain words
    assert any("learning from every example" in m for m in steps), steps

    pred = await svc.predict("g1", "what is your address please")
    assert (pred.label, pred.reply) == ("location", "Main Street 1.")
    assert 0 < pred.confidence <= 1
    assert (await svc.predict("g1", "do you accept bitcoin")).label == "payment"

    meta = await svc.model_info("g1")
    assert meta["dataset"] == "faq" and meta["rows"] == 13 and meta["versions"] == 1
    assert meta["sklearn"] and meta["numpy"] and meta["python"] and meta["created"]

    report = await svc.evaluate("g1", '["where is the shop", "can i pay by card"]')
    assert not report.labelled and "location" in report.text and "payment" in report.text
    report = await svc.evaluate("g1", b'[{"text": "when do you open", "label": "hours"}]', "t.json")
    assert report.labelled and report.accuracy == 1.0 and "accuracy 1.000" in report.text
    assert report.png.startswith(b"\x89PNG")


@pytest.mark.slow
async def test_retraining_replaces_the_cached_model(svc):
    await svc.save_dataset("g1", "faq.csv", faq_csv())
    await train_and_wait(svc, "g1", "faq")
    first = latest_version(svc.models_dir, "g1")
    assert (await svc.predict("g1", "zorblax quux")).label in {"hours", "location", "payment"}
    final, _ = await train_and_wait(svc, "g1", "faq", [("zorblax quux", "hours"), ("zorblax quuxing", "hours")])
    assert final.state == "finished" and latest_version(svc.models_dir, "g1") != first
    assert (await svc.predict("g1", "zorblax quux")).label == "hours"


async def test_train_validates_before_queueing(svc):
    with pytest.raises(DatasetError, match="no dataset"):
        await svc.train("g1", "missing", [], None)
    await svc.add_example("g1", "tiny", "a", "first example")
    with pytest.raises(DatasetError) as info:
        await svc.train("g1", "tiny", [], None)
    assert "two classes" in info.value.user_message
    # ...but extra examples (corrections) are appended for that training.
    final, statuses = await train_and_wait(svc, "g1", "tiny", [("second example", "b")])
    assert final.state == "finished" and "2 examples of 2 labels" in statuses[1].message


async def test_busy_per_scope(svc):
    await svc.save_dataset("g1", "faq.csv", faq_csv())
    job = await svc.train("g1", "faq", [], None)
    with pytest.raises(Busy) as info:
        await svc.train("g1", "faq", [], None)
    assert "already" in info.value.user_message
    assert svc.active_job("g1") is job
    await job.done
    assert svc.active_job("g1") is None


async def test_errors_carry_user_messages(svc, tmp_path):
    with pytest.raises(NoModelError) as info:
        await svc.evaluate("g1", b"text,label\na,b\n")
    assert "train" in info.value.user_message
    with pytest.raises(DatasetError) as bad:
        await svc.save_dataset("g1", "x.bin", bytes(range(256)) * 4)
    assert isinstance(bad.value, ModelError) and bad.value.user_message
    assert await svc.list_datasets("g1") == []
    # An incompatible model is refused with a clear message, not a crash.
    await svc.save_dataset("g1", "faq.csv", faq_csv())
    await train_and_wait(svc, "g1", "faq")
    path = latest_version(svc.models_dir, "g1")
    raw = path.read_bytes()
    version = (await svc.model_info("g1"))["sklearn"]
    fake = "0." + "0" * (len(version) - 2)  # same length keeps the header intact
    path.write_bytes(raw.replace(f'"sklearn": "{version}"'.encode(), f'"sklearn": "{fake}"'.encode()))
    svc.cache.forget("g1")
    with pytest.raises(IncompatibleModelError) as old:
        await svc.predict("g1", "hello")
    assert fake in old.value.user_message and "retrain" in old.value.user_message.lower()


async def test_shared_dataset_usable_by_any_scope(svc, tmp_path):
    (tmp_path / "datasets").mkdir(parents=True)
    (tmp_path / "datasets" / "faq.csv").write_bytes(faq_csv())
    infos = await svc.list_datasets("dm-55")
    assert [(i.name, i.shared) for i in infos] == [("faq", True)]
    final, _ = await train_and_wait(svc, "dm-55", "faq")
    assert final.state == "finished"
    assert (await svc.predict("dm-55", "do you take cash")).reply == "Cards are fine."


@pytest.mark.slow
async def test_event_loop_stays_free_while_training(svc):
    """Training runs in a worker process: the loop keeps turning until the job ends.

    (Prediction latency is a speed target, measured by bench/model.py, not asserted here.)
    """
    texts, labels = intent_dataset(300, 6, seed=8)
    data = "text,label\n" + "\n".join(f"{t},{lab}" for t, lab in zip(texts, labels))
    await svc.save_dataset("g9", "intents.csv", data.encode())
    job = await svc.train("g9", "intents", [], None)
    # While the worker trains, the loop still serves other work: another server's datasets are
    # saved and listed before the job ends (a loop blocked by training would finish them after).
    served = 0
    while not job.done.done():
        await svc.save_dataset(f"other{served}", "small.csv", b"text,label\nhello,greeting\nbye,farewell\n")
        served += 1
        if served >= 3:
            break
    assert not job.done.done() and served == 3
    assert (await job.done).state == "finished"
    assert (await svc.predict("g9", texts[0])).label == labels[0]


@pytest.mark.slow
async def test_evaluate_caps_rows_off_the_bot_process(svc):
    await svc.save_dataset("g1", "faq.csv", faq_csv())
    await train_and_wait(svc, "g1", "faq")
    rows = "".join(f"{q},{label}\n" for q, label, _ in FAQ * 3)
    report = await svc.evaluate("g1", "text,label\n" + rows, "t.csv", max_rows=10)
    assert (report.rows, report.rows_given) == (10, 36) and report.labelled
    assert report.text.startswith("(Tested the first 10 of 36 rows")
    assert report.csv.count(b"\n") == 11
    full = await svc.evaluate("g1", "text,label\n" + rows, "t.csv")
    assert (full.rows, full.rows_given) == (36, 36) and "Tested the first" not in full.text
    with pytest.raises(DatasetError):
        await svc.evaluate("g1", b"\x00\x01" * 100, "bad.csv")


@pytest.mark.slow
async def test_encoder_training_in_the_worker_reuses_cached_embeddings(tmp_path):
    from tests.unit.test_model_encoder import INTENTS

    service = ModelService(tmp_path, prestart_worker=False, use_encoder=True, target_precision=0.9)
    try:
        data = "text,label\n" + "".join(f"{t},{label}\n" for label, ts in INTENTS.items() for t in ts)
        await service.save_dataset("g1", "intents.csv", data.encode())
        final, _ = await train_and_wait(service, "g1", "intents")
        assert final.state == "finished" and "Learner:" in final.message and "held-out" in final.message
        assert "`oos` examples" in final.message
        meta = await service.model_info("g1")
        assert meta["encoder"] and meta["embedded"] == 32 and meta["oos_label"] == "oos"
        corrections = [("will it hail", "weather"), ("queue up some blues", "music")]
        final, _ = await train_and_wait(service, "g1", "intents", corrections)
        assert final.state == "finished"
        assert (await service.model_info("g1"))["embedded"] == 2  # only the new rows
        pred = await service.predict("g1", "is it going to rain later")
        assert (pred.label, pred.abstain) == ("weather", False) and pred.threshold is not None
        assert (await service.predict("g1", "who painted the mona lisa")).abstain
        test = "text,label\nis it sunny,weather\nplay a song,music\nhow deep is the ocean,oos\n"
        report = await service.evaluate("g1", test, "t.csv")  # the evaluation worker needs the encoder too
        assert report.oos_recall is not None and report.in_scope_accuracy is not None
    finally:
        await service.close()
