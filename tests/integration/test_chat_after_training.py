"""Default settings, sentence encoder on: after training, everyday chat is answered (not "not sure"),
and a big `!test` shows its progress at once and reports (issue 18, sections 1 and 2)."""
from __future__ import annotations

import pytest
import pytest_asyncio

from model.modelstore import latest_version, read_meta
from tests.integration.model_data import (EVERYDAY_SENTIMENT, csv_bytes, long_reviews, reviews,
                                          wait_for_test_report)

pytestmark = pytest.mark.slow  # trains with the sentence encoder

BOT_ENV: dict[str, str] = {}  # the defaults a newcomer runs with: that is the subject

EVERYDAY = EVERYDAY_SENTIMENT

@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def trained(fake, bot):
    msg = await fake.send(fake.alice, "!train", attachments=[("reviews.csv", csv_bytes(reviews()), "text/csv")])
    status = await fake.reply_to(msg, timeout=30)
    status = await fake.wait_for_edit(status, lambda m: "Training finished" in m.text or "failed" in m.text,
                                      timeout=180)
    assert "Training finished" in status.text, status.text
    return status


async def test_the_model_was_trained_with_the_sentence_encoder(fake, bot, trained, data_dir):
    meta = read_meta(latest_version(data_dir / "models", str(fake.guild.id)))
    assert meta["encoder"] is True and "embeddings" in meta["learner"], meta["learner"]


async def test_the_status_says_how_often_it_answers(fake, bot, trained):
    assert "messages like these" in trained.text, trained.text


async def test_everyday_chat_is_answered_with_the_right_label(fake, bot, trained):
    right, answers = 0, []
    for text, label in EVERYDAY:
        msg = await fake.send(fake.bob, text)
        reply = await fake.reply_to(msg, timeout=30)
        answers.append((text, reply.text))
        right += reply.content == label
    assert right >= 9, answers


async def test_a_big_test_shows_progress_and_reports(fake, bot, trained):
    rows = long_reviews(600)
    msg = await fake.send(fake.bob, "!test", attachments=[("long.csv", csv_bytes(rows), "text/csv")])
    status = await fake.reply_to(msg, timeout=30)
    assert status.text.startswith("🧪 Testing"), status.text  # at once, before any result
    await fake.wait_for_edit(status, lambda m: "testing 600 rows" in m.text, timeout=60)
    report = await wait_for_test_report(fake, msg)
    assert "accuracy" in report.text and {a.filename for a in report.attachments} >= {"predictions.csv"}, report.text
