"""One chat message kept up to date with a background job's progress (training).

Typed `!train`: a reply to the command.  `/train`: the interaction's response (after a
deferral, the first follow-up *is* the original response), edited through its token.
"""
from __future__ import annotations

import asyncio
import logging

import discord
from discord.ext import commands

from model.jobs import answering_message

from .checks import scope_of
from .i18n import Words
from .replies import respond

log = logging.getLogger("commands.status")


class StatusMessage:
    """Updates may arrive before the message exists or while an edit is in flight:
    only the newest text is ever shown, and edits never overtake each other."""

    def __init__(self, ctx: commands.Context, words: Words, header: str = "", corrections: int = 0):
        self.ctx = ctx
        self.words = words  # the reader's language: the job's progress (Phrases) is said in it
        self.header = header
        self.corrections = corrections  # of a training job: said in its finished summary
        self.message: discord.Message | None = None
        self.latest: str | None = None
        self.finished = False
        self._lock = asyncio.Lock()

    def _render(self, text: str) -> str:
        return f"{self.header}\n{text}" if self.header else text

    async def send(self, text: str) -> None:
        async with self._lock:
            text, self.latest = self.latest or text, None
            self.message = (await respond(self.ctx, self._render(text)[:2000]))[0]

    async def update(self, status) -> None:
        """A training job's JobStatus."""
        if status.state == "finished":
            await self.show(await self._trained(status))
            return
        _ = self.words
        await self.show(_("Training job `{job}`: {status}", job=status.job_id, status=_(status.message)))

    async def _trained(self, status) -> str:
        """The finished job in words, from the saved model's figures (the job's own text if unreadable)."""
        try:
            meta = await self.ctx.bot.model.model_info(scope_of(self.ctx))
        except Exception:
            log.exception("Could not read the trained model's figures")
            meta = None
        _ = self.words
        if not meta or meta.get("job_id") != status.job_id:
            return _("Training job `{job}`: {status}", job=status.job_id, status=_(status.message))
        return training_summary(meta, self.corrections, status.seconds, status.job_id, status.message, _)

    async def show(self, text: str) -> None:
        """Any progress line (``!test`` uses this)."""
        self.latest = text
        async with self._lock:
            if self.message is None or self.latest is None or self.finished:
                return
            text, self.latest = self.latest, None
            try:
                await self.message.edit(content=self._render(text)[:2000])
            except discord.HTTPException:
                log.exception("Could not update the status message")

    async def finish(self, text: str, files: list[discord.File] | None = None) -> None:
        """The last word: the message becomes ``text`` (with ``files``); later progress is ignored.

        If the edit fails, the text is sent as a new reply instead, so a result is never lost."""
        async with self._lock:
            self.finished, self.latest = True, None
            if self.message is not None:
                try:
                    await self.message.edit(content=self._render(text)[:2000], attachments=files or [])
                    return
                except discord.HTTPException:
                    log.warning("Could not edit the status message into the result; replying instead")
                for file in files or []:
                    file.reset()
            await respond(self.ctx, self._render(text), files=files)


def _duration(seconds: float, _: Words) -> str:
    if seconds < 1:
        return _("under a second")
    if seconds < 120:
        return _.n("{count} second", "{count} seconds", round(seconds))
    return _.n("{count} minute", "{count} minutes", round(seconds / 60))


def training_summary(meta: dict, corrections: int, seconds: float | None, job_id: str, figures: str, _: Words) -> str:
    """What a server admin reads when training finished: what was learned, how well, in plain
    words; then one Details line with the job's own figures (learner, macro-F1, threshold...)."""
    rows, topics = meta.get("rows", 0), meta.get("classes", 0)
    took = _duration(seconds if seconds is not None else meta.get("seconds", 0.0), _)
    examples = _.n("{count:,} example", "{count:,} examples", rows)
    if meta.get("oos_label"):  # examples of what is none of the topics: "not sure" to messages like them
        learned = _.n("Training finished: I learned {examples} of {count} topic and of off-topic messages in {took}",
                      "Training finished: I learned {examples} of {count} topics and of off-topic messages in {took}",
                      topics - 1, examples=examples, took=took)
    else:
        learned = _.n("Training finished: I learned {examples} of {count} topic in {took}",
                      "Training finished: I learned {examples} of {count} topics in {took}",
                      topics, examples=examples, took=took)
    if corrections:
        learned += _.n(", including {count} correction", ", including {count} corrections", corrections)
    accuracy, method = meta.get("accuracy", 0.0), meta.get("eval_method")
    if method == "held-out":
        checked = _("Accuracy on {count:,} examples held back from training: {accuracy:.0%}.",
                    count=meta.get("eval_rows", 0), accuracy=accuracy)
    elif method == "cross-validation":
        checked = _("Accuracy on examples held back from training: {accuracy:.0%} (each example held back once, "
                    "in {rounds} rounds).", accuracy=accuracy, rounds=meta.get("cv_folds", 5))
    else:
        checked = _("Accuracy on the training examples themselves: {accuracy:.0%} (too few examples of each topic to "
                    "hold some back: add more).", accuracy=accuracy)
    lines = [learned + ".", checked]
    if answering := answering_message(meta):  # the share it answers rather than saying "not sure"
        lines.append(_(answering))
    parts = [line.strip() for line in figures.removeprefix("Training finished: ").splitlines() if line.strip()]
    details = " ".join(part if part.endswith(".") else part + "." for part in parts)
    lines.append(_("Details: Training job `{job}` on `{dataset}`: {figures}", job=job_id, dataset=meta.get("dataset"),
                   figures=details))
    return "\n".join(lines)
