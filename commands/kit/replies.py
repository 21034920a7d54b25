"""Sending text to Discord within its 2,000-character limit.

Long text is split on line boundaries; a code block cut in two is closed at the
end of one message and reopened (same language) at the start of the next.
"""
from __future__ import annotations

import asyncio
import io

import discord
from discord.ext import commands

from errors import Phrase, UserError
from storage.attachments import Outgoing, fit_attachments

from .i18n import Words, words_for

LIMIT = 2000
FENCE = "```"


def _hard_wrap(line: str, width: int) -> list[str]:
    """Cut a line longer than `width`, preferring spaces."""
    pieces = []
    while len(line) > width:
        cut = line.rfind(" ", 0, width)
        if cut <= width // 2:
            cut = width
        pieces.append(line[:cut])
        line = line[cut:].lstrip(" ")
    pieces.append(line)
    return pieces


def split_message(text: str, limit: int = LIMIT) -> list[str]:
    """Split `text` into chunks of at most `limit` characters, keeping code blocks closed."""
    if len(text) <= limit:
        return [text] if text else []
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    fence: str | None = None  # the opening line of the code block we are inside
    reserve = len(FENCE) + 1  # room to close a fence at a cut

    def flush() -> None:
        nonlocal current, size
        body = "\n".join(current)
        if fence is not None:
            body += "\n" + FENCE
        if body.strip():
            chunks.append(body)
        current = [fence] if fence is not None else []
        size = len(fence) if fence is not None else 0

    for raw_line in text.split("\n"):
        opener_room = (len(fence) + 1) if fence else 0
        for line in _hard_wrap(raw_line, limit - reserve - opener_room - 1):
            added = len(line) + (1 if current else 0)
            if size + added > limit - reserve:
                flush()
                added = len(line) + (1 if current else 0)
            current.append(line)
            size += added
            if line.strip().startswith(FENCE):
                fence = None if fence is not None else line.strip()
    if current:
        body = "\n".join(current)
        if body.strip() and body.strip() != (fence or ""):
            chunks.append(body)
    return chunks


def upload_limit(channel: discord.abc.Messageable) -> int:
    """Largest file the bot may attach in this channel."""
    guild = getattr(channel, "guild", None)
    return guild.filesize_limit if guild is not None else discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES


async def send_reply(message: discord.Message, text: str, *, files: list[discord.File] | None = None,
                     embed: discord.Embed | None = None) -> list[discord.Message]:
    """Reply to `message` (a reply reference on the first part); files go with the last part."""
    parts = split_message(text) or [""]
    sent = []
    reference = message.to_reference(fail_if_not_exists=False)
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        sent.append(await message.channel.send(
            part or None,
            reference=reference if index == 0 else None,
            files=files if last and files else discord.utils.MISSING,
            embed=embed if last and embed else None,
            mention_author=False,
        ))
    return sent


async def respond(ctx: commands.Context, text: str, *, files: list[discord.File] | None = None,
                  ephemeral: bool = False) -> list[discord.Message]:
    """Answer a command, typed (`!x`: a reply to the message) or slash (`/x`: the interaction's
    response, then follow-ups); long text is split, files go with the last part.

    `ephemeral` only applies to slash commands: refusals and errors are seen by their author only."""
    parts = split_message(text) or [""]
    sent = []
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        sent.append(await ctx.send(
            part or None,
            files=files if last and files else None,
            reference=ctx.message.to_reference(fail_if_not_exists=False) if index == 0 and ctx.interaction is None else None,
            mention_author=False,
            ephemeral=ephemeral,
        ))
    return sent


def _noted(text: str, notes: list[str], _: Words) -> str:
    """`text` and what happened to its files (storage's notes are Phrases: said in `_`'s language)."""
    return text + "\n" + "\n".join(f"📎 {_(note)}" for note in notes) if notes else text


async def fit_files(ctx: commands.Context, text: str, files: list[Outgoing]) -> tuple[str, list[discord.File]]:
    """`files` made to fit this channel's upload limit, and `text` saying what changed."""
    fitted, notes = await asyncio.to_thread(fit_attachments, files, upload_limit(ctx.channel))
    text = _noted(text, notes, await words_for(ctx))
    return text, [discord.File(io.BytesIO(f.data), filename=f.filename) for f in fitted]


async def respond_with_files(ctx: commands.Context, text: str, files: list[Outgoing], *,
                             ephemeral: bool = False) -> list[discord.Message]:
    """`respond` with `files` made to fit this channel's upload limit; the answer says what changed.

    `ephemeral` hides a slash answer from everyone else; typed commands have no such thing, so
    an answer for one person uses `respond_privately` instead."""
    text, fitted = await fit_files(ctx, text, files)
    return await respond(ctx, text, files=fitted, ephemeral=ephemeral)


async def referenced_message(message: discord.Message) -> discord.Message | None:
    """The message `message` replies to, fetched when Discord did not include it."""
    ref = message.reference
    if ref is None or ref.message_id is None:
        return None
    if isinstance(ref.resolved, discord.Message):
        return ref.resolved
    try:
        return await message.channel.fetch_message(ref.message_id)
    except discord.HTTPException:
        return None


class DirectMessagesClosed(UserError):
    """A private answer could not be sent: the user's DMs are closed to the bot."""


async def respond_privately(ctx: commands.Context, text: str, files: list[Outgoing] | None = None) -> None:
    """An answer only its author may see: ephemeral for slash commands, a DM for typed ones.

    A typed command in a server channel must not post the answer there (the bot owner's host files,
    every member's feedback): it goes to the author's DMs, and the channel is told only that. When the
    DMs are closed nothing is posted but a refusal saying how to get it (the slash form)."""
    files = files or []
    if ctx.interaction is not None:
        await respond_with_files(ctx, text, files, ephemeral=True)
        return
    if ctx.guild is None:  # already a DM
        await respond_with_files(ctx, text, files)
        return
    fitted, notes = await asyncio.to_thread(fit_attachments, files, discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES)
    _ = await words_for(ctx)
    text = _noted(text, notes, _)
    try:
        parts = split_message(text) or [""]
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            await ctx.author.send(part or None, files=[discord.File(io.BytesIO(f.data), filename=f.filename)
                                                       for f in fitted] if last and fitted else discord.utils.MISSING)
    except discord.Forbidden as exc:
        raise DirectMessagesClosed(Phrase(
            "I couldn't send that to your DMs (they are closed to me), and it is not for this channel. Open "
            "your DMs for this server, or use `/{command}`: its answer is only shown to you.",
            command=_.slash_name(ctx.command.qualified_name) if ctx.command else "")) from exc
    await respond(ctx, _("📬 Sent to your DMs."))
