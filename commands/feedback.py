"""Feedback and corrections: what members tell the bot about its answers.

Feedback is for a server's admins to read (`!feedback list`); corrections are used at
the next training.  Both are kept per server under the retention rules (settings
KEEP_FEEDBACK_*, KEEP_CORRECTIONS_*), so a flood only pushes out that server's oldest rows.
"""
from __future__ import annotations

import csv
import io
import time
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from errors import UserError
from storage.attachments import Outgoing

from .checks import NotServerAdmin, is_server_admin, owner_exempt_cooldown, scope_of
from .replies import referenced_message, send_files_reply, send_reply

if TYPE_CHECKING:
    from bot import ChatBot

LIST_SHOWN = 10


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


class Feedback(commands.Cog):
    """Feedback for the admins, and corrections for the model."""

    def __init__(self, bot: ChatBot):
        self.bot = bot

    @commands.group(invoke_without_command=True)
    @owner_exempt_cooldown(rate=3)
    async def feedback(self, ctx: commands.Context, *, text: str = "") -> None:
        """Tell the server's admins what you think, e.g. `!feedback the answers are great`.

        Send it as a reply to one of my messages to say which answer you mean.
        Admins: `!feedback list` shows this server's feedback, `!feedback clear` deletes it."""
        text = text.strip()
        if not text:
            raise UserError(f"Please write your feedback after the command, e.g. "
                            f"`{ctx.clean_prefix}feedback the answers are great`.")
        replied = await referenced_message(ctx.message)
        await self.bot.db.add_feedback(scope_of(ctx.message), ctx.channel.id, ctx.author.id, text,
                                       replied.id if replied else None, replied.content if replied else None)
        await send_reply(ctx.message, "Thanks for the feedback! It has been saved for the admins.")

    def _require_admin(self, ctx: commands.Context) -> None:
        if not is_server_admin(self.bot, ctx.author, ctx.guild):
            raise NotServerAdmin(f"feedback {ctx.invoked_with}")

    @feedback.command(name="list")
    async def feedback_list(self, ctx: commands.Context) -> None:
        """Show this server's feedback, newest first, with all of it as a CSV. (server admins)"""
        self._require_admin(ctx)
        rows = await self.bot.db.list_feedback(scope_of(ctx.message))
        if not rows:
            await send_reply(ctx.message, "No feedback here yet.")
            return
        lines = [f"{len(rows)} feedback message{'s' if len(rows) != 1 else ''}, newest first:"]
        for row in rows[:LIST_SHOWN]:
            when = time.strftime("%Y-%m-%d", time.gmtime(row["created_at"]))
            about = " (about an answer)" if row["replied_message_id"] else ""
            lines.append(f"• {when} <@{row['author_id']}>{about}: {discord.utils.escape_markdown(_clip(row['text'], 150))}")
        if len(rows) > LIST_SHOWN:
            lines.append(f"… and {len(rows) - LIST_SHOWN} more in the attached CSV.")
        await send_files_reply(ctx.message, "\n".join(lines), [Outgoing("feedback.csv", _feedback_csv(rows))])

    @feedback.command(name="clear")
    async def feedback_clear(self, ctx: commands.Context) -> None:
        """Delete all of this server's feedback. (server admins)"""
        self._require_admin(ctx)
        count = await self.bot.db.clear_feedback(scope_of(ctx.message))
        await send_reply(ctx.message, f"Deleted {count} feedback message{'s' if count != 1 else ''}.")

    @commands.command()
    @owner_exempt_cooldown(rate=3)
    async def correct(self, ctx: commands.Context, *, text: str = "") -> None:
        """Correct one of my answers: reply to it with `!correct RIGHT ANSWER`,
        or give its id: `!correct MESSAGE_ID RIGHT ANSWER`.

        Corrections are used the next time the model is trained."""
        text = text.strip()
        target_id: int | None = None
        replied = await referenced_message(ctx.message)
        if replied is not None:
            target_id = replied.id
        else:
            first, _, rest = text.partition(" ")
            if first.isdigit():
                target_id, text = int(first), rest.strip()
        if target_id is None:
            raise UserError(f"Reply to one of my messages with `{ctx.clean_prefix}correct RIGHT ANSWER`, "
                            f"or use `{ctx.clean_prefix}correct MESSAGE_ID RIGHT ANSWER`.")
        if not text:
            raise UserError(f"Please say what the right answer is: `{ctx.clean_prefix}correct RIGHT ANSWER`.")
        scope = scope_of(ctx.message)
        original, bot_reply = await self._exchange(ctx, scope, target_id, replied)
        await self.bot.db.add_correction(scope, ctx.channel.id, ctx.author.id, target_id, original, bot_reply, text)
        await send_reply(ctx.message, f"Thanks! Noted that the answer should be **{discord.utils.escape_markdown(text)}**. "
                                      "It will be used the next time the model is trained.")

    async def _exchange(self, ctx: commands.Context, scope: str, bot_message_id: int,
                        message: discord.Message | None) -> tuple[str, str]:
        """(user's original text, bot's reply) for a bot message being corrected."""
        recorded = await self.bot.db.get_bot_reply(scope, bot_message_id)
        if recorded is not None:
            return recorded.user_text, recorded.reply_text
        if message is None:
            try:
                message = await ctx.channel.fetch_message(bot_message_id)
            except discord.HTTPException:
                raise UserError(f"I can't find message {bot_message_id} in this channel.") from None
        if self.bot.user is None or message.author.id != self.bot.user.id:
            raise UserError("That isn't one of my messages; reply to one of my answers to correct it.")
        original = await referenced_message(message)
        if original is None:
            raise UserError("That message of mine wasn't an answer to someone, so there is nothing to correct.")
        return original.content, message.content


def _cell(text: str) -> str:
    """Members write this text: keep spreadsheets from running it as a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _feedback_csv(rows: list[dict]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["created_utc", "author_id", "channel_id", "text", "about_message_id", "about_message_text"])
    for row in rows:
        writer.writerow([time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(row["created_at"])), row["author_id"],
                         row["channel_id"], _cell(row["text"]), row["replied_message_id"] or "",
                         _cell(row["replied_content"] or "")])
    return buffer.getvalue().encode("utf-8")


async def setup(bot: ChatBot) -> None:
    await bot.add_cog(Feedback(bot))
