"""What the bot answers when its model can't, in one place: chat and listening in voice say it alike.

The one "not sure" rule is the model's (model/hybrid.py decide_rows: learned threshold,
out-of-scope label, and CONFIDENCE_THRESHOLD as a floor on the calibrated probability); here
it only becomes words. The listening service (voice/listening.py) gets `voice_answers` as its
`answer` function, so voice/ never imports this package.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable

from model.service import ModelService

NOT_TRAINED = ("I haven't been trained here yet, so I can't answer. A server admin can teach me by attaching a "
               "dataset (a CSV with `text,label` columns) to `{prefix}train`; `{prefix}help train` says more.")
NOT_SURE = "I'm not sure what you mean. An admin can teach me with `{prefix}train`, or you can `{prefix}correct` me."


async def model_answer(model: ModelService, scope: str, text: str, prefix: str) -> tuple[str | None, bool]:
    """(the answer, whether the model is sure): None when this scope has no model yet,
    NOT_SURE when the model abstains."""
    prediction = await model.predict(scope, text)
    if prediction is None:
        return None, False
    if prediction.abstain:
        return NOT_SURE.format(prefix=prefix), False
    return prediction.reply, True


def voice_answers(model: ModelService, prefix: str) -> Callable[[str, str], Awaitable[tuple[str, bool]]]:
    """The listening service's `answer`: (scope, what was said) -> (answer, say it aloud).
    Not sure or not trained is said in text only."""
    async def answer(scope: str, text: str) -> tuple[str, bool]:
        reply, sure = await model_answer(model, scope, text, prefix)
        return (NOT_TRAINED.format(prefix=prefix) if reply is None else reply), sure

    return answer
