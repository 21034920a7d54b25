"""Listening in voice: who may be heard in each server, and answering what members say.

Off until a server admin turns it on (LISTEN_DEFAULT changes that); a member can opt out
for themselves. Both are stored per server in scope_settings. While listening, the bot
is not self-deafened, says so when it joins (text and a short spoken line), and answers
each member's utterance like a chat message: "🎙️ NAME said: … → answer" in the text
channel tied to the voice session (where `!join` or `!listen on` was used), the answer
spoken behind whatever the bot is already saying; answers the model is not sure about
are text only. Only the transcript is kept (bot_replies, under the retention rules);
audio never leaves memory. The receiving itself is voice/receiver.py; the commands are
commands/listen.py.

The answer's wording is the cogs' (chat and voice answer alike): the service is given an
`answer` function, so nothing here imports `commands/`. Its own notices are worded through
`words` (the Listen cog gives it the message catalog: the server's language, or the speaker's);
until then, English.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Callable

import discord

from audio.errors import AudioError
from audio.transcription import TranscriptionService
from audio.voice_receive import BusyNotice, after_wake_word
from config import Settings
from errors import Busy, Phrase
from storage.database import Database
from storage.languages import LanguageSettings
from storage.scopes import server_scope

from .connection import VoiceManager
from .internals import CLIENT_DISCONNECT, SESSION_DESCRIPTION, SPEAKING
from .receiver import VoiceReceiver
from .tasks import BackgroundTasks

log = logging.getLogger("voice.listen")

# (scope, what a member said, the words of the place) -> (the answer, whether to say it aloud): the cogs' wording.
Answer = Callable[..., Awaitable[tuple[str, bool]]]
# (server, member or None for everyone there) -> a translate function: _("English {x}", x=...) in their language.
Translate = Callable[..., str]
Wording = Callable[[discord.Guild, "int | None"], Awaitable[Translate]]

ENABLED_KEY = "listen"
OPTOUTS_KEY = "listen_optouts"  # comma-separated user ids
SPOKEN_NOTICE = Phrase("I'm listening. Talk to me and I'll answer.")


def _english(message: str, /, **params) -> str:
    return message.format(**params) if params else str(message)


async def english(guild: discord.Guild, user_id: int | None) -> Translate:
    """The wording before the cogs give theirs: English, the messages as written."""
    return _english


@dataclass
class _GuildListen:
    enabled: bool
    optouts: set[int] = field(default_factory=set)


class ArrivalNotices:
    """Whoever joins the channel while the bot listens is told, once, and how to opt out.

    Text in the channel tied to the voice session, at most one message per TEXT_EVERY seconds
    per server (arrivals in between are named together in the next one), and the short spoken
    line at most once per SPOKEN_EVERY seconds. A member is told once per server while the bot
    runs; one who opted out is not heard, so is not told."""

    TEXT_EVERY = 30.0
    SPOKEN_EVERY = 60.0
    TOLD_LIMIT = 10_000

    def __init__(self, manager: ListenManager):
        self.manager = manager
        self._told: dict[tuple[int, int], None] = {}  # (guild, member), oldest first
        self._waiting: dict[int, list[str]] = {}  # guild -> names to tell in its next message
        self._last_text: dict[int, float] = {}
        self._last_spoken: dict[int, float] = {}

    async def arrived(self, member: discord.Member) -> None:
        guild = member.guild
        state = await self.manager.state(guild.id)
        key = (guild.id, member.id)
        if not state.enabled or member.id in state.optouts or key in self._told:
            return
        self._told[key] = None
        while len(self._told) > self.TOLD_LIMIT:
            self._told.pop(next(iter(self._told)))
        now = time.monotonic()
        if now - self._last_spoken.get(guild.id, -self.SPOKEN_EVERY) >= self.SPOKEN_EVERY:
            self._last_spoken[guild.id] = now
            _ = await self.manager.words(guild, None)
            await self.manager.voice.playback.say(guild, _(SPOKEN_NOTICE))
        waiting = self._waiting.setdefault(guild.id, [])
        waiting.append(discord.utils.escape_markdown(member.display_name))
        if len(waiting) == 1:  # the first since the last message: send now, or when the rate allows
            delay = self._last_text.get(guild.id, -self.TEXT_EVERY) + self.TEXT_EVERY - now
            self.manager.tasks.spawn(self._send(guild, max(0.0, delay)), name=f"listen-notice-{guild.id}")

    async def _send(self, guild: discord.Guild, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)  # the rate limit, not synchronisation
        names = self._waiting.pop(guild.id, [])
        channel = self.manager.voice.text_channel(guild)
        if not names or channel is None:
            return
        self._last_text[guild.id] = time.monotonic()
        prefix = self.manager.settings.command_prefix
        _ = await self.manager.words(guild, None)
        who = ", ".join(names[:10])
        if len(names) > 10:
            who = _("{names} and {count} more", names=who, count=len(names) - 10)
        await channel.send(_("🎙️ {who}: I'm listening in this voice channel and answer what you say. Only the "
                             "transcript is kept, never audio. `{prefix}listen me off` if you'd rather I didn't "
                             "hear you (`{prefix}listen me forget` also deletes what I kept).", who=who, prefix=prefix),
                           allowed_mentions=discord.AllowedMentions.none())


class ListenManager:
    """Per-server listening state, one receiver per voice connection, and the answers.

    Voice exists in servers only, so the data scope here is always the server's
    (storage/scopes.py, the rule commands/kit/checks.py scope_of follows too)."""

    def __init__(self, client: discord.Client, settings: Settings, *, db: Database, stt: TranscriptionService,
                 voice: VoiceManager, answer: Answer, languages: LanguageSettings | None = None):
        self.client = client
        self.languages = languages or LanguageSettings(db, default=settings.stt_language)
        self.settings = settings
        self.db = db
        self.stt = stt
        self.voice = voice
        self.answer = answer
        self.words: Wording = english  # the notices' wording: the Listen cog gives the catalog's
        self._state: dict[int, _GuildListen] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self.receivers: dict[int, VoiceReceiver] = {}  # guild id -> receiver of its connection
        self.busy = BusyNotice()
        self.tasks = BackgroundTasks(log)
        self.answered = 0  # utterances answered (logged)
        self._names: dict[int, str] = {}  # user id -> display name (a member who left is no longer cached)
        self.notices = ArrivalNotices(self)

    # -- state ------------------------------------------------------------------------------------
    async def state(self, guild_id: int) -> _GuildListen:
        cached = self._state.get(guild_id)
        if cached is not None:
            return cached
        lock = self._locks.setdefault(guild_id, asyncio.Lock())
        async with lock:
            if guild_id not in self._state:
                scope = server_scope(guild_id)
                stored = await self.db.get_setting(scope, ENABLED_KEY)
                optouts = await self.db.get_setting(scope, OPTOUTS_KEY) or ""
                enabled = self.settings.listen_default if stored is None else stored == "on"
                self._state[guild_id] = _GuildListen(enabled, {int(u) for u in optouts.split(",") if u.isdigit()})
        return self._state[guild_id]

    async def enabled(self, guild_id: int) -> bool:
        return (await self.state(guild_id)).enabled

    async def set_enabled(self, guild: discord.Guild, enabled: bool) -> None:
        state = await self.state(guild.id)
        await self.db.set_setting(server_scope(guild.id), ENABLED_KEY, "on" if enabled else "off")
        state.enabled = enabled
        receiver = self.receivers.get(guild.id)
        if receiver is not None:
            if enabled:
                receiver.attach()
            else:
                receiver.detach()
        client = guild.voice_client
        if isinstance(client, discord.VoiceClient) and client.is_connected() and client.channel is not None:
            # The voice status shows it: not deafened while listening (public API).
            await guild.change_voice_state(channel=client.channel, self_deaf=not enabled)

    async def set_opted_out(self, guild_id: int, user_id: int, out: bool) -> None:
        """Atomic per server: two members opting out at once both stick (read-modify-write under the lock)."""
        state = await self.state(guild_id)  # takes the lock itself when loading: not held here
        async with self._locks.setdefault(guild_id, asyncio.Lock()):
            changed = set(state.optouts)
            (changed.add if out else changed.discard)(user_id)
            await self.db.set_setting(server_scope(guild_id), OPTOUTS_KEY, ",".join(str(u) for u in sorted(changed)))
            state.optouts = changed
        receiver = self.receivers.get(guild_id)
        if out and receiver is not None:
            receiver.forget(user_id)

    def hears(self, guild_id: int, user_id: int) -> bool:
        """Whether a member's voice may be transcribed now (sync: called per packet)."""
        state = self._state.get(guild_id)
        if state is None or not state.enabled or user_id in state.optouts:
            return False
        me = self.client.user
        if me is not None and user_id == me.id:
            return False
        guild = self.client.get_guild(guild_id)
        member = guild.get_member(user_id) if guild is not None else None
        return not (member is not None and member.bot)

    # -- voice gateway messages (from internals.ListeningVoiceClient, on the loop) ---------------------
    def on_voice_message(self, client: discord.VoiceClient, msg: dict) -> None:
        op, data = msg.get("op"), msg.get("d") or {}
        guild_id = client.guild.id
        receiver = self.receivers.get(guild_id)
        if op == SESSION_DESCRIPTION:
            if receiver is None or receiver.client is not client:
                if receiver is not None:
                    receiver.close()
                receiver = self.receivers[guild_id] = VoiceReceiver(
                    client, self, pause=self.settings.listen_pause_seconds,
                    max_seconds=self.settings.listen_max_seconds)
            self.tasks.spawn(self._attach_if_listening(receiver), name=f"listen-attach-{guild_id}")
        elif receiver is None or receiver.client is not client:
            return
        elif op == SPEAKING and "ssrc" in data and data.get("user_id") is not None:
            self._remember(client.guild.get_member(int(data["user_id"])))
            receiver.on_speaking(int(data["user_id"]), int(data["ssrc"]))
        elif op == CLIENT_DISCONNECT and data.get("user_id") is not None:
            receiver.on_disconnect(int(data["user_id"]))

    async def _attach_if_listening(self, receiver: VoiceReceiver) -> None:
        if await self.enabled(receiver.guild_id) and self.receivers.get(receiver.guild_id) is receiver:
            receiver.attach()
            log.info("Listening in %s (guild %s)", receiver.client.channel, receiver.guild_id)

    async def on_voice_state_update(self, member: discord.Member, before: discord.VoiceState,
                                    after: discord.VoiceState) -> None:
        receiver = self.receivers.get(member.guild.id)
        if receiver is None:
            return
        self._remember(member)
        if (not member.bot and after.channel is not None and before.channel != after.channel
                and after.channel == receiver.client.channel):
            await self.notices.arrived(member)
        me = self.client.user
        if me is not None and member.id == me.id:
            if after.channel is None:  # the bot left: its connection is gone (a drag keeps the
                receiver.close()  # client: the receiver reads its new socket once connected)
                self.receivers.pop(member.guild.id, None)
        elif before.channel is not None and before.channel != after.channel and before.channel == receiver.client.channel:
            receiver.on_disconnect(member.id)  # left the bot's channel (op 13 may come too)

    def _remember(self, member: discord.Member | None) -> None:
        if member is not None:
            self._names.pop(member.id, None)
            self._names[member.id] = member.display_name
            while len(self._names) > 1000:
                self._names.pop(next(iter(self._names)))

    # -- answering ----------------------------------------------------------------------------------
    def heard(self, guild_id: int, user_id: int, wav: bytes, seconds: float, last_voice: float) -> None:
        """An utterance is ready (from the receiver, on the loop)."""
        self.tasks.spawn(self._answer(guild_id, user_id, wav, seconds, last_voice),
                         name=f"listen-answer-{guild_id}")

    async def _answer(self, guild_id: int, user_id: int, wav: bytes, seconds: float, last_voice: float) -> None:
        guild = self.client.get_guild(guild_id)
        if guild is None or not self.hears(guild_id, user_id):
            return
        channel = self.voice.text_channel(guild)
        if channel is None:
            log.info("Heard someone in guild %s but no text channel is tied to the voice session", guild_id)
            return
        try:
            # Fair per server; live voice uses VOICE_STT_ENGINES only (local by default: it never leaves the machine).
            heard_in = await self.languages.choose(guild_id, user_id, str(guild.preferred_locale))
            transcript = await self.stt.transcribe(wav, scope=server_scope(guild_id), live=True,
                                                   language=heard_in.speech)
        except Busy as exc:
            if self.busy.busy(guild_id):
                _ = await self.words(guild, None)
                await channel.send(_("🎙️ Too many people talking for me to keep up; I'm skipping some. ({reason})",
                                     reason=_(exc.user_message)), allowed_mentions=discord.AllowedMentions.none())
            return
        except AudioError as exc:  # silence, noise: nothing to answer
            log.debug("Nothing transcribed from %.1f s of user %s: %s", seconds, user_id, exc)
            return
        self.busy.served(guild_id)
        said = transcript.text.strip()
        asked = after_wake_word(said, self.settings.listen_wake_word) if said else None
        if not asked or not self.hears(guild_id, user_id):
            return
        member = guild.get_member(user_id)
        name = member.display_name if member is not None else self._names.get(user_id, str(user_id))
        _ = await self.words(guild, user_id)  # the speaker's language: theirs, else the server's
        answer, sure = await self.answer(server_scope(guild_id), asked, _)  # not sure or not trained: text only
        text = _("🎙️ {name} said: {said} → {answer}", name=discord.utils.escape_markdown(name), said=said,
                 answer=answer)
        sent = await channel.send(text[:2000], allowed_mentions=discord.AllowedMentions.none())
        receiver = self.receivers.get(guild_id)
        log.info("Answered %.1f s of speech from user %s in %.2f s after its last packet (transcribed in %.2f s); "
                 "so far %s", seconds, user_id, time.monotonic() - last_voice, transcript.elapsed,
                 receiver.describe() if receiver is not None else "-")
        self.answered += 1
        await self.db.record_bot_reply(server_scope(guild_id), channel.id, sent.id, None, user_id, said, answer)
        if sure:
            await self.voice.playback.say(guild, answer)

    # -- forgetting, and the join notice --------------------------------------------------------------
    async def forget(self, guild: discord.Guild, user_id: int, max_messages: int = 100) -> int:
        """Delete what was kept of a member's words here, and the bot's posted transcripts of their speech."""
        rows = await self.db.forget_user_replies(server_scope(guild.id), user_id)
        transcripts = [(c, m) for c, m, voice in rows if voice][-max_messages:]
        for channel_id, message_id in transcripts:
            channel = guild.get_channel(channel_id)
            if isinstance(channel, discord.abc.Messageable):
                try:
                    await channel.get_partial_message(message_id).delete()
                except discord.HTTPException:
                    log.info("Could not delete transcript message %s (already gone?)", message_id)
        return len(rows)

    async def join_notice(self, guild: discord.Guild) -> str:
        """Text added to the join message while listening (and the spoken line queued)."""
        if not await self.enabled(guild.id):
            return ""
        _ = await self.words(guild, None)
        await self.voice.playback.say(guild, _(SPOKEN_NOTICE))  # queued first: before any answer
        prefix = self.settings.command_prefix
        wake = self.settings.listen_wake_word
        if wake:
            return "\n" + _("🎙️ I'm listening in this channel: start with “{wake}” and I'll answer what you say here. "
                            "Only the transcript is kept, never audio; `{prefix}listen me off` if you'd rather I "
                            "didn't hear you.", wake=wake, prefix=prefix)
        return "\n" + _("🎙️ I'm listening in this channel: I'll answer what you say here. Only the transcript is "
                        "kept, never audio; `{prefix}listen me off` if you'd rather I didn't hear you.", prefix=prefix)

    async def close(self) -> None:
        for receiver in self.receivers.values():
            receiver.close()
        self.receivers.clear()
        self.tasks.cancel_all()
