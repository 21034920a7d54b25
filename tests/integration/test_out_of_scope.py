"""A dataset with out-of-scope examples: the bot says "not sure" to messages like them, and
`!test` reports in-scope accuracy, out-of-scope recall and the abstention rate."""
from __future__ import annotations

import csv
import io

import pytest_asyncio

from tests.integration.model_data import csv_bytes, rows, wait_for_test_report

OOS = ["tell me a joke about cats", "what is the capital of peru", "how do i change a car tyre",
       "play some jazz music", "who won the football match", "translate hello into german",
       "set an alarm for six", "how many legs does a spider have", "book me a flight to rome",
       "what is my bank balance", "call my mother", "how tall is mount everest", "order new printer ink",
       "remind me to water the plants", "what time is it in tokyo", "convert ten miles to kilometres",
       "who wrote hamlet", "turn off the lights", "how do i reset my password", "spell necessary",
       "what is two plus two", "find my phone", "how old is the universe", "tell me a fun fact",
       "what does a dentist do", "start a timer for ten minutes", "which planet is the largest",
       "recommend a good book", "how do i tie a tie", "what is the speed of light"]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def trained(fake, bot):
    data = csv_bytes(rows() + [(text, "oos") for text in OOS])
    msg = await fake.send(fake.alice, "!train", attachments=[("assistant.csv", data, "text/csv")])
    status = await fake.reply_to(msg, timeout=30)
    status = await fake.wait_for_edit(status, lambda m: "Training finished" in m.text or "failed" in m.text,
                                      timeout=180)
    assert "Training finished" in status.text, status.text
    return status


async def test_the_status_says_which_learner_and_when_it_is_not_sure(fake, bot, trained):
    assert "Learner:" in trained.text and "held-out" in trained.text
    assert "out-of-scope" in trained.text or "not sure" in trained.text


async def test_in_scope_is_answered_and_out_of_scope_gets_not_sure(fake, bot, trained):
    weather = await fake.send(fake.bob, "will it be sunny tomorrow in paris")
    assert (await fake.reply_to(weather)).content == "weather"
    unknown = await fake.send(fake.bob, "tell me a joke about dogs")
    reply = await fake.reply_to(unknown)
    assert "not sure" in reply.text and reply.content != "oos"


async def test_test_reports_out_of_scope_recall_and_marks_abstentions(fake, bot, trained):
    held_out = rows(seed=5, per_class=5) + [("tell me a joke about horses", "oos"),
                                            ("what is the capital of chile", "oos"),
                                            ("play some rock music", "oos")]
    msg = await fake.send(fake.bob, "!test", attachments=[("check.csv", csv_bytes(held_out), "text/csv")])
    reply = await wait_for_test_report(fake, msg)
    text = reply.text.lower()
    assert "in-scope accuracy" in text and "out-of-scope recall" in text and "not sure on" in text, reply.text
    predictions = next(a for a in reply.attachments if a.filename.startswith("predictions.csv"))
    table = list(csv.DictReader(io.StringIO(fake.attachment_data(predictions).decode())))
    assert "abstained" in table[0]
    assert any(row["abstained"] in ("1", "true", "True", "yes") for row in table if row["expected"] == "oos")
