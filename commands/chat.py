"""Messages that are not commands: answered by the model, audio transcribed first.

Only adapts Discord: the prediction is `model/`'s, the transcription `audio/`'s.
Every answer is recorded (so `!correct` can find what it answered) and, when
the author is in a voice channel, spoken there too.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from audio.decode import looks_like_audio
from errors import UserError

from .kit.answers import NOT_TRAINED, model_answer
from .kit.checks import scope_of
from .kit.error_handler import user_message_of
from .kit.i18n import Words, words_for, words_in
from .kit.replies import send_reply

if TYPE_CHECKING:
    from bot import ChatBot

log = logging.getLogger("commands.chat")


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" for line in text.splitlines() or [""])


class Chat(commands.Cog):
    """Answers chat, and audio after transcribing it; the **Transcribe** message menu."""

    def __init__(self, bot: ChatBot):
        self.bot = bot
        self.settings = bot.settings
        self.transcribe_menu = app_commands.ContextMenu(name="Transcribe", callback=self.transcribe_from_menu)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.transcribe_menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.transcribe_menu.name, type=self.transcribe_menu.type)

    # -- routing ------------------------------------------------------------------------------
    def _addressed(self, message: discord.Message) -> bool:
        """Whether CHAT_MODE lets the bot answer this message here."""
        if message.guild is None:
            return True
        mode = self.settings.chat_mode
        if mode == "mention":
            return self.bot.user is not None and self.bot.user in message.mentions
        if mode == "channels":
            return message.channel.id in self.settings.chat_channels
        return True

    def _is_command_attempt(self, message: discord.Message) -> bool:
        prefix = self.settings.command_prefix
        rest = message.content[len(prefix):] if message.content.startswith(prefix) else ""
        return bool(rest) and (rest[0].isalnum() or rest[0] == "_")

    def _text_of(self, message: discord.Message) -> str:
        text = message.content
        if self.bot.user is not None:
            for mention in (f"<@{self.bot.user.id}>", f"<@!{self.bot.user.id}>"):
                text = text.replace(mention, " ")
        return " ".join(text.split())

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot or self._is_command_attempt(message) or not self._addressed(message):
            return
        if (await self.bot.get_context(message)).valid:  # a command given by mentioning the bot
            return
        audio = [a for a in message.attachments if looks_like_audio(a.filename, a.content_type)]
        if audio and not self.settings.auto_transcribe:
            audio = []  # on demand only: the Transcribe menu
        text = "" if audio else self._text_of(message)
        if not audio and not text:
            return
        _ = await words_in(self.bot, message.guild, message.author.id)  # the reader's language
        try:
            if audio:
                await self._answer_audio(message, audio, _)
            else:
                await self._answer_text(message, text, _)
        except Exception as exc:  # noqa: BLE001 - one bad message must never stop the bot
            friendly = user_message_of(exc)
            if friendly is None:
                log.exception("Failed to answer message %s", message.id)
                friendly = _("Sorry, something went wrong while answering that. It has been logged.")
            await self._safe_reply(message, _(friendly))

    async def _safe_reply(self, message: discord.Message, text: str) -> None:
        try:
            await send_reply(message, text)
        except discord.HTTPException:
            log.exception("Could not reply to message %s", message.id)

    # -- answers ------------------------------------------------------------------------------
    async def _model_answer(self, message: discord.Message, text: str, _: Words) -> str | None:
        """The model's answer to `text` (NOT_SURE when it is not sure), or None when this scope has no model."""
        answer, _sure = await model_answer(self.bot.model, scope_of(message), text, self.settings.command_prefix, _)
        return answer

    def _speaks_to_me(self, message: discord.Message) -> bool:
        """A DM, a mention of the bot, or a reply to one of its messages: someone expects an answer."""
        me = self.bot.user
        if message.guild is None or me is None:
            return True
        if me in message.mentions:
            return True
        ref = message.reference
        return isinstance(ref.resolved, discord.Message) and ref.resolved.author.id == me.id if ref else False

    async def _answer_text(self, message: discord.Message, text: str, _: Words) -> None:
        answer = await self._model_answer(message, text, _)
        if answer is None:
            if self._speaks_to_me(message):  # unaddressed chat stays quiet
                await self._safe_reply(message, _(NOT_TRAINED, prefix=self.settings.command_prefix))
            return
        await self._deliver(message, text, answer, spoken=answer)

    async def _answer_audio(self, message: discord.Message, attachments: list[discord.Attachment], _: Words) -> None:
        for attachment in attachments:
            if attachment.size > self.settings.max_attachment_bytes:
                limit_mb = self.settings.max_attachment_bytes / 2**20
                await self._safe_reply(message, _("`{file}` is too big to transcribe (the limit is {mb:.0f} MB).",
                                                  file=attachment.filename, mb=limit_mb))
                continue
            try:
                async with message.channel.typing():
                    transcript = await self._transcribe(attachment, scope_of(message), message.guild, message.author.id)
            except Exception as exc:  # noqa: BLE001
                friendly = user_message_of(exc)
                if friendly is None:
                    raise
                await self._safe_reply(message, f"`{attachment.filename}`: {_(friendly)}")
                continue
            answer = await self._model_answer(message, transcript.text, _)
            text = _("🎙️ {name} said:", name=message.author.display_name) + f"\n{_quote(transcript.text)}"
            if answer is not None:
                text += f"\n{answer}"
            await self._deliver(message, transcript.text, text, spoken=answer)

    async def _transcribe(self, attachment: discord.Attachment, scope: str, guild: discord.Guild | None, speaker: int):
        # Fair per server; admitted to the queue before the download, so a refused upload
        # (busy) is never downloaded and a flood of large files never sits in memory.
        # Heard in the speaker's language: their own setting, else the server's, else detected.
        locale = str(guild.preferred_locale) if guild is not None else None
        choice = await self.bot.languages.choose(guild.id if guild is not None else None, speaker, locale)
        return await self.bot.stt.transcribe(fetch=attachment.read, size=attachment.size, scope=scope,
                                             language=choice.speech)

    async def transcribe_from_menu(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """Context menu: transcribe a message's audio on demand (for servers with AUTO_TRANSCRIBE off)."""
        audio = [a for a in message.attachments if looks_like_audio(a.filename, a.content_type)]
        _ = await words_for(interaction)
        if not audio:
            await interaction.response.send_message(_("That message has no audio or voice message."), ephemeral=True)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        scope = scope_of(interaction)
        parts = []
        for attachment in audio:
            if attachment.size > self.settings.max_attachment_bytes:
                parts.append(_("`{file}` is too big to transcribe.", file=attachment.filename))
                continue
            try:
                transcript = await self._transcribe(attachment, scope, interaction.guild, message.author.id)
            except UserError as exc:
                parts.append(f"`{attachment.filename}`: {_(exc.user_message)}")
                continue
            parts.append(_("🎙️ {name} said:", name=discord.utils.escape_markdown(message.author.display_name))
                         + f"\n{_quote(transcript.text)}")
        await interaction.followup.send("\n".join(parts)[:2000], ephemeral=True)

    async def _deliver(self, message: discord.Message, user_text: str, reply_text: str,
                       spoken: str | None) -> None:
        sent = await send_reply(message, reply_text)
        await self.bot.db.record_bot_reply(scope_of(message), message.channel.id, sent[0].id, message.id,
                                           message.author.id, user_text, spoken or reply_text)
        if spoken and self.settings.speak_replies:
            await self.bot.voice.speak_reply(message, spoken)


async def setup(bot: ChatBot) -> None:
    await bot.add_cog(Chat(bot))
