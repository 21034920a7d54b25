"""Feedback and corrections: what members tell the bot about its answers.

Feedback is for a server's admins to read (`!feedback list`); corrections are used at
the next training.  Both are kept per server under the retention rules (settings
KEEP_FEEDBACK_*, KEEP_CORRECTIONS_*), so a flood only pushes out that server's oldest rows.
A correction can also be made from a bot answer's context menu, **Correct this answer**,
which asks for the right answer in a modal.
"""
from __future__ import annotations

import csv
import io
import time
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from errors import Phrase, UserError
from storage.attachments import Outgoing

from .kit.checks import NotServerAdmin, is_server_admin, owner_exempt_app_cooldown, owner_exempt_cooldown, scope_of
from .kit.error_handler import reply_to_interaction_error
from .kit.i18n import Words, words_for
from .kit.replies import referenced_message, respond, respond_privately

if TYPE_CHECKING:
    from bot import ChatBot

LIST_SHOWN = 10
ADMIN_WORDS = ("list", "clear")
CORRECT_RATE = 3  # `!correct` and the Correct this answer menu: uses per COOLDOWN_SECONDS per member


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


class MessageId(commands.Converter[int]):
    """A message id (digits); typed, or given as a slash option's text."""

    async def convert(self, ctx: commands.Context, argument: str) -> int:
        if not (argument.isdigit() and len(argument) <= 20):
            raise commands.BadArgument(Phrase("`{text}` is not a message id.", text=argument[:30]))
        return int(argument)


class Feedback(commands.Cog):
    """Feedback for the admins, and corrections for the model."""

    def __init__(self, bot: ChatBot):
        self.bot = bot
        self.correct_menu = owner_exempt_app_cooldown(rate=CORRECT_RATE)(
            app_commands.ContextMenu(name="Correct this answer", callback=self.correct_from_menu))

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.correct_menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.correct_menu.name, type=self.correct_menu.type)

    # -- feedback -----------------------------------------------------------------------------
    @commands.hybrid_command()
    @owner_exempt_cooldown(rate=3)
    @app_commands.describe(text="What you think (admins: `list` shows this server's feedback, `clear` deletes it)")
    async def feedback(self, ctx: commands.Context, *, text: str = "") -> None:
        """Tell the server's admins what you think, e.g. `!feedback the answers are great`.

        Send it as a reply to one of my messages to say which answer you mean.
        Admins: `!feedback list` shows this server's feedback, `!feedback clear` deletes it."""
        text = text.strip()
        if text.lower() in ADMIN_WORDS:
            if not is_server_admin(self.bot, ctx.author, ctx.guild):
                raise NotServerAdmin(f"feedback {text.lower()}")
            await ctx.defer(ephemeral=True)  # slash: a long list and its CSV can take longer than Discord's 3 s
            await (self._list(ctx) if text.lower() == "list" else self._clear(ctx))
            return
        if not text:
            raise UserError(Phrase("Please write your feedback after the command, e.g. `{prefix}feedback the answers "
                                   "are great`.", prefix=ctx.clean_prefix))
        await ctx.defer(ephemeral=True)  # slash: the database may be busy with other writes
        replied = await referenced_message(ctx.message) if ctx.interaction is None else None
        await self.bot.db.add_feedback(scope_of(ctx), ctx.channel.id, ctx.author.id, text,
                                       replied.id if replied else None, replied.content if replied else None)
        _ = await words_for(ctx)
        await respond(ctx, _("Thanks for the feedback! It has been saved for the admins."), ephemeral=True)

    async def _list(self, ctx: commands.Context) -> None:
        rows = await self.bot.db.list_feedback(scope_of(ctx))
        _ = await words_for(ctx)
        if not rows:
            await respond(ctx, _("No feedback here yet."), ephemeral=True)
            return
        lines = [_.n("{count} feedback message, newest first:", "{count} feedback messages, newest first:", len(rows))]
        about_an_answer = " " + _("(about an answer)")
        for row in rows[:LIST_SHOWN]:
            when = time.strftime("%Y-%m-%d", time.gmtime(row["created_at"]))
            about = about_an_answer if row["replied_message_id"] else ""
            lines.append(f"• {when} <@{row['author_id']}>{about}: {discord.utils.escape_markdown(_clip(row['text'], 150))}")
        if len(rows) > LIST_SHOWN:
            lines.append(_.n("… and {count} more in the attached CSV.", "… and {count} more in the attached CSV.",
                             len(rows) - LIST_SHOWN))
        # Every member's words are for this server's admins: a DM or an ephemeral reply, never the channel.
        await respond_privately(ctx, "\n".join(lines), [Outgoing("feedback.csv", _feedback_csv(rows))])

    async def _clear(self, ctx: commands.Context) -> None:
        count = await self.bot.db.clear_feedback(scope_of(ctx))
        _ = await words_for(ctx)
        await respond(ctx, _.n("Deleted {count} feedback message.", "Deleted {count} feedback messages.", count))

    # -- corrections --------------------------------------------------------------------------
    @commands.hybrid_command()
    @owner_exempt_cooldown(rate=CORRECT_RATE)
    @app_commands.describe(message_id="The id of my answer to correct (typed: or reply to that answer)",
                           answer="What the right answer is")
    async def correct(self, ctx: commands.Context, message_id: MessageId | None = None, *, answer: str = "") -> None:
        """Correct one of my answers: reply to it with `!correct RIGHT ANSWER`,
        or give its id: `!correct MESSAGE_ID RIGHT ANSWER`.

        Corrections are used the next time the model is trained. From a message's menu,
        **Apps → Correct this answer** does the same."""
        answer = answer.strip()
        replied = await referenced_message(ctx.message) if ctx.interaction is None else None
        target_id = replied.id if replied is not None else message_id
        if target_id is None:
            raise UserError(Phrase("Reply to one of my messages with `{prefix}correct RIGHT ANSWER`, or use "
                                   "`{prefix}correct MESSAGE_ID RIGHT ANSWER`.", prefix=ctx.clean_prefix))
        if replied is not None and message_id is not None:  # replying, and the answer starts with digits
            answer = f"{message_id} {answer}".strip()
        if not answer:
            raise UserError(Phrase("Please say what the right answer is: `{prefix}correct RIGHT ANSWER`.",
                                   prefix=ctx.clean_prefix))
        await ctx.defer()  # slash: finding the answer may fetch it from Discord; the database may be busy
        await self._store(scope_of(ctx), ctx.channel, ctx.author, target_id, replied, answer)
        await respond(ctx, _thanks(answer, await words_for(ctx)))

    async def _store(self, scope: str, channel: discord.abc.Messageable, author: discord.abc.User, target_id: int,
                     message: discord.Message | None, answer: str) -> None:
        original, bot_reply = await self._exchange(channel, scope, target_id, message)
        await self.bot.db.add_correction(scope, channel.id, author.id, target_id, original, bot_reply, answer)

    async def _exchange(self, channel: discord.abc.Messageable, scope: str, bot_message_id: int,
                        message: discord.Message | None) -> tuple[str, str]:
        """(user's original text, bot's reply) for a bot message being corrected."""
        recorded = await self.bot.db.get_bot_reply(scope, bot_message_id)
        if recorded is not None:
            return recorded.user_text, recorded.reply_text
        if message is None:
            try:
                message = await channel.fetch_message(bot_message_id)
            except discord.HTTPException:
                raise UserError(Phrase("I can't find message {id} in this channel.", id=bot_message_id)) from None
        if self.bot.user is None or message.author.id != self.bot.user.id:
            raise UserError(Phrase("That isn't one of my messages; reply to one of my answers to correct it."))
        original = await referenced_message(message)
        if original is None:
            raise UserError(Phrase("That message of mine wasn't an answer to someone, so there is nothing to correct."))
        return original.content, message.content

    async def correct_from_menu(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """Context menu: check the message is one of the bot's answers, then ask for the right one."""
        _ = await words_for(interaction)
        if self.bot.user is None or message.author.id != self.bot.user.id:
            await interaction.response.send_message(
                _("That isn't one of my messages; use this on one of my answers."), ephemeral=True)
            return
        await interaction.response.send_modal(CorrectionModal(self, message, _))


class CorrectionModal(discord.ui.Modal):
    """Asks for the right answer, in the words of whoever asked."""

    def __init__(self, cog: Feedback, message: discord.Message, _: Words):
        super().__init__(custom_id=f"correct-{message.id}", title=_("Correct this answer"))
        self.answer = discord.ui.TextInput(label=_("The right answer"), max_length=200, placeholder=_("e.g. weather"))
        self.add_item(self.answer)
        self.cog = cog
        self.message = message
        self.words = _

    async def on_submit(self, interaction: discord.Interaction) -> None:
        answer = self.answer.value.strip()
        if not answer:
            _ = self.words
            await interaction.response.send_message(_("Please write the right answer."), ephemeral=True)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)  # storing may fetch from Discord
        await self.cog._store(scope_of(interaction), interaction.channel, interaction.user, self.message.id,
                              self.message, answer)
        await interaction.followup.send(_thanks(answer, self.words), ephemeral=True)

    async def on_error(self, interaction: discord.Interaction, error: Exception) -> None:
        await reply_to_interaction_error(interaction, error)


def _thanks(answer: str, _: Words) -> str:
    return _("Thanks! Noted that the answer should be **{answer}**. It will be used the next time the model is trained.",
             answer=discord.utils.escape_markdown(answer))


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
