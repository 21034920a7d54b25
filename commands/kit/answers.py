"""What the bot answers when its model can't, in one place: chat and listening in voice say it alike.

The one "not sure" rule is the model's (model/hybrid.py decide_rows: learned threshold,
out-of-scope label, and CONFIDENCE_THRESHOLD as a floor on the calibrated probability); here
it only becomes words. The listening service (voice/listening.py) gets `voice_answers` as its
`answer` function, so voice/ never imports this package.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable

from errors import Phrase
from model.service import ModelService
from storage.languages import ENGLISH

from .i18n import Words, words

NOT_TRAINED = Phrase("I haven't been trained here yet, so I can't answer. A server admin can teach me by attaching a "
                     "dataset (a CSV with `text,label` columns) to `{prefix}train`; `{prefix}help train` says more.")
NOT_SURE = Phrase("I'm not sure what you mean. An admin can teach me with `{prefix}train`, or you can `{prefix}correct` me.")


async def model_answer(model: ModelService, scope: str, text: str, prefix: str,
                       _: Words = words(ENGLISH)) -> tuple[str | None, bool]:
    """(the answer, whether the model is sure): None when this scope has no model yet,
    NOT_SURE (in `_`'s language) when the model abstains."""
    prediction = await model.predict(scope, text)
    if prediction is None:
        return None, False
    if prediction.abstain:
        return _(NOT_SURE, prefix=prefix), False
    return prediction.reply, True


def voice_answers(model: ModelService, prefix: str) -> Callable[..., Awaitable[tuple[str, bool]]]:
    """The listening service's `answer`: (scope, what was said, the words of the place) -> (answer, say it aloud).
    Not sure or not trained is said in text only."""
    async def answer(scope: str, text: str, _: Words = words(ENGLISH)) -> tuple[str, bool]:
        reply, sure = await model_answer(model, scope, text, prefix, _)
        return (_(NOT_TRAINED, prefix=prefix) if reply is None else reply), sure

    return answer
