"""!train, !test, !select_dataset, chat answers and corrections (issue 4), through the local server."""
from __future__ import annotations

import io
import re
import sqlite3

import pytest
import pytest_asyncio
from PIL import Image

from tests.integration.model_data import csv_bytes, rows, wait_for_test_report

BOT_ENV: dict[str, str] = {}  # default settings
FINISHED = "Training finished"


def finished(message) -> bool:
    return FINISHED in message.text or "Training failed" in message.text


async def train_with(fake, attachment: tuple[str, bytes, str], author=None, args: str = ""):
    msg = await fake.send(author or fake.alice, f"!train {args}".strip(), attachments=[attachment])
    status = await fake.reply_to(msg, timeout=10)
    return msg, await fake.wait_for_edit(status, finished, timeout=120)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def trained(fake, bot):
    msg, status = await train_with(fake, ("intents.csv", csv_bytes(rows()), "text/csv"))
    return status


@pytest.mark.slow
async def test_train_replies_at_once_then_reports_the_result(fake, bot, trained):
    status = trained
    assert FINISHED in status.text, status.text
    assert re.search(r"accuracy \d\.\d+", status.text) and "macro-F1" in status.text
    assert "Training job `" in status.text and "`intents`" in status.edits[0] + status.text
    # Progress never claimed completion before the end.
    for earlier in status.edits:
        assert not re.search(r"finished|done|complete", earlier, re.I), earlier


@pytest.mark.slow
async def test_chat_message_is_answered_with_the_predicted_label(fake, bot, trained):
    msg = await fake.send(fake.bob, "will it be sunny tomorrow in paris")
    reply = await fake.reply_to(msg)
    assert reply.content == "weather"
    assert reply.reference_id == msg.id


@pytest.mark.slow
async def test_test_with_labelled_file_reports_accuracy_and_a_confusion_matrix(fake, bot, trained):
    data = csv_bytes(rows(seed=1, per_class=10))
    msg = await fake.send(fake.bob, "!test", attachments=[("holdout.csv", data, "text/csv")])
    reply = await wait_for_test_report(fake, msg)
    assert re.search(r"accuracy[ :]+\d", reply.text), reply.text
    assert "macro-F1" in reply.text
    for label in ("weather", "food", "greeting"):
        assert label in reply.text
    png = next(a for a in reply.attachments if a.filename.endswith(".png"))
    image = Image.open(io.BytesIO(fake.attachment_data(png)))
    assert image.format == "PNG" and image.width >= 200


async def test_test_inline_unlabelled_gives_predictions(fake, bot, trained):
    msg = await fake.send(fake.bob, '!test ["is there snow expected tonight", "where can i get pizza downtown"]')
    reply = await wait_for_test_report(fake, msg)
    assert "weather" in reply.text and "food" in reply.text
    csv_file = next(a for a in reply.attachments if a.filename.endswith(".csv"))
    assert b"weather" in fake.attachment_data(csv_file)


async def test_select_dataset_lists_and_selects(fake, bot, trained):
    msg = await fake.send(fake.bob, "!select_dataset")
    reply = await fake.reply_to(msg)
    assert "`intents`" in reply.text and "90 rows" in reply.text and "selected" in reply.text
    unknown = await fake.send(fake.alice, "!select_dataset nope")
    assert "There is no dataset `nope`" in (await fake.reply_to(unknown)).text
    select = await fake.send(fake.alice, "!select_dataset intents")
    assert "Selected dataset `intents`" in (await fake.reply_to(select)).text


@pytest.mark.parametrize("name, data, expected", [
    ("one-class.csv", csv_bytes([("a", "x"), ("b", "x"), ("c", "x")]), "class"),
    ("empty.csv", b"", "empty"),
    ("garbage.bin", bytes(range(256)) * 20, ""),
    ("broken.json", b'[{"text": "a", "label": ', ""),
    ("nolabel.csv", b"foo,bar\n1,2\n3,4\n", ""),
])
async def test_bad_datasets_are_refused_and_change_nothing(fake, bot, trained, data_dir, name, data, expected):
    msg = await fake.send(fake.alice, "!train", attachments=[(name, data, "text/csv")])
    reply = await fake.reply_to(msg, timeout=30)
    assert "Training finished" not in reply.text and "went wrong" not in reply.text, reply.text
    assert expected in reply.text.lower()
    chat = await fake.send(fake.bob, "hello there buddy")
    assert (await fake.reply_to(chat)).content == "greeting"  # the old model still answers


async def test_non_admin_cannot_train(fake, bot, trained):
    msg = await fake.send(fake.bob, "!train", attachments=[("mine.csv", csv_bytes(rows(seed=3)), "text/csv")])
    reply = await fake.reply_to(msg)
    assert "for admins only" in reply.text


async def test_train_adds_one_example(fake, bot, trained):
    msg = await fake.send(fake.alice, "!train greeting yo what's up")
    reply = await fake.reply_to(msg)
    assert "Added an example" in reply.text and "91 rows" in reply.text


@pytest.mark.slow
async def test_a_correction_changes_the_next_models_answer(fake, bot, trained, data_dir):
    question = await fake.send(fake.bob, "zorblax quuxing flibber")
    answer = await fake.reply_to(question)
    wrong = answer.content
    right = next(label for label in ("weather", "food", "greeting") if label != wrong)
    fix = await fake.send(fake.bob, f"!correct {right}", reply_to=answer)
    await fake.reply_to(fix)
    with sqlite3.connect(data_dir / "bot.sqlite3") as conn:
        assert conn.execute("SELECT original_text, correction FROM corrections").fetchall() == [
            ("zorblax quuxing flibber", right)]
    retrain = await fake.send(fake.alice, "!train")
    status = await fake.reply_to(retrain)
    assert "1 correction" in status.text
    status = await fake.wait_for_edit(status, finished, timeout=120)
    assert FINISHED in status.text
    again = await fake.send(fake.bob, "zorblax quuxing flibber")
    assert (await fake.reply_to(again)).content == right


async def test_train_label_with_a_text_file_adds_a_class_to_the_selected_dataset(fake, bot, trained):
    # The original bot's `!train positive` + a file of sentences.
    msg = await fake.send(fake.alice, "!train positive", attachments=[
        ("good.txt", b"i love this product\nwonderful product\nbest purchase ever\nreally great product\n"
                     b"this product is amazing\nsuch a lovely product\n", "text/plain")])
    status = await fake.reply_to(msg)
    assert "`intents`" in status.text  # merged into the selected dataset, not a new one
    status = await fake.wait_for_edit(status, finished, timeout=120)
    assert FINISHED in status.text and "4 classes" in status.text + "".join(status.edits)
    chat = await fake.send(fake.bob, "what a wonderful product")
    assert (await fake.reply_to(chat)).content == "positive"
