"""Voice channels: joining, leaving, being moved or left alone, and leaving when idle.

One `VoiceManager` per bot. Per server it holds a lock that serialises connecting and
leaving (commands, spoken replies and Discord's events all connect or leave), the text
channel tied to the voice session, and (through voice/playback.py) the speech queue whose
worker disconnects the bot once it has had nothing to say for VOICE_IDLE_SECONDS.

The service takes channels and members, not commands: a request it can't do raises
`VoiceError` (a `UserError`), and the cogs word the replies.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Literal, Protocol

import discord

from config import Settings
from errors import Phrase, UserError
from storage.languages import LanguageSettings

from .internals import ListeningVoiceClient, wait_until_connected
from .playback import Playback, Speech, names_in_message
from .tasks import BackgroundTasks

log = logging.getLogger("voice")

CONNECT_TIMEOUT = 15.0  # seconds for the voice handshake (join or move)
DISCONNECT_TIMEOUT = 5.0
EMPTY_CHANNEL_GRACE = 1.0  # seconds an empty channel is kept before leaving
SETTLE_TIMEOUT = 5.0  # seconds to let discord.py finish a reconnect (after a move) before acting

VoiceChannel = discord.VoiceChannel | discord.StageChannel
Joined = Literal["already", "joined", "moved"]


class VoiceError(UserError):
    """A voice request that can't be done; `user_message` is shown as the reply."""


class Listener(Protocol):
    """What the connection manager asks of the listening service (voice/listening.py)."""

    async def enabled(self, guild_id: int) -> bool: ...

    async def join_notice(self, guild: discord.Guild) -> str: ...

    def on_voice_message(self, client: discord.VoiceClient, msg: dict) -> None: ...


def bold(name: str) -> str:
    return f"**{discord.utils.escape_markdown(name)}**"


def has_humans(channel: discord.abc.GuildChannel | None) -> bool:
    """Whether anyone other than bots is in the voice channel."""
    members = getattr(channel, "members", None) or []
    return any(not member.bot for member in members)


def join_problem(channel: VoiceChannel) -> str | None:
    """Why the bot can't connect and speak in `channel`, or None when it can."""
    me = channel.guild.me
    if me is None:
        return Phrase("I can't see myself in this server yet; try again in a moment.")
    perms = channel.permissions_for(me)
    if not perms.connect:
        return Phrase("I don't have permission to connect to {channel}.", channel=bold(channel.name))
    if not perms.speak:
        return Phrase("I don't have permission to speak in {channel}.", channel=bold(channel.name))
    limit = getattr(channel, "user_limit", 0)
    if limit and len(channel.members) >= limit and not perms.move_members and me not in channel.members:
        return Phrase("{channel} is full.", channel=bold(channel.name))
    return None


@dataclass
class _GuildVoice:
    """Per-guild state: a lock for connecting/leaving, and a pending empty-channel check."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    leave_check: asyncio.Task | None = None  # an empty-channel check in its grace period


class VoiceManager:
    """The bot's voice connections, one per server, and what it says in them."""

    def __init__(self, client: discord.Client, settings: Settings, languages: LanguageSettings | None = None):
        self.client = client
        self.settings = settings
        self.listener: Listener | None = None  # the listening service; None when the bot can't listen
        self._guilds: dict[int, _GuildVoice] = {}
        self._tasks = BackgroundTasks(log)
        self.playback = Playback(client, settings, self._tasks, on_idle=self._leave_idle, languages=languages)
        self._text_channels: dict[int, int] = {}  # guild id -> text channel tied to its voice session

    # -- requests ---------------------------------------------------------------------------------
    async def join(self, channel: VoiceChannel, text_channel: discord.abc.Messageable) -> Joined:
        """Connect to (or move to) `channel`; what is heard there is answered in `text_channel`."""
        guild = channel.guild
        async with self._state(guild.id).lock:
            await self._settle(guild.voice_client)
            current = guild.voice_client
            if isinstance(current, discord.VoiceClient) and current.is_connected() and current.channel == channel:
                return "already"
            moved = isinstance(current, discord.VoiceClient) and current.is_connected()
            if (problem := join_problem(channel)) is not None:
                raise VoiceError(problem)
            await self._connect(channel)
        self.tie_text_channel(guild, text_channel)
        return "moved" if moved else "joined"

    async def leave(self, guild: discord.Guild) -> str:
        """Disconnect from the guild's voice channel; the name of the channel left."""
        async with self._state(guild.id).lock:
            await self._settle(guild.voice_client)
            client = guild.voice_client
            connected = isinstance(client, discord.VoiceClient) and client.is_connected()
            name = client.channel.name if connected and client.channel else ""
            await self._disconnect(guild, "asked to leave")
        if not connected:
            raise VoiceError(Phrase("I'm not in a voice channel."))
        return name

    async def speak_reply(self, message: discord.Message, text: str, listener: discord.Member | None = None) -> None:
        """Speak `text` in the voice channel of `listener` (default: `message`'s author), if they are in one.

        Joins that channel when the bot is in none (or in an empty one) and may connect
        and speak there; queues the text behind earlier replies. Never raises: problems
        are logged, the text reply has been sent anyway."""
        try:
            await self._speak_reply(message, text, listener)
        except asyncio.CancelledError:
            raise
        except VoiceError as exc:  # could not join: the text reply is enough
            log.warning("Not speaking the reply to message %s: %s", message.id, exc.user_message)
        except Exception:
            log.exception("Could not speak the reply to message %s", message.id)

    async def _speak_reply(self, message: discord.Message, text: str, listener: discord.Member | None = None) -> None:
        if not self.settings.speak_replies or self.playback.closing or not text or not text.strip():
            return
        guild = message.guild
        author = listener or message.author
        if guild is None or not isinstance(author, discord.Member):
            return
        channel = author.voice.channel if author.voice else None
        if channel is None:
            return
        synth = await self.playback.synthesizer()
        names = names_in_message(message, self.client)
        if not (cleaned := synth.clean(text, names)):
            log.debug("Nothing to say aloud for message %s", message.id)
            return
        # Spoken in the language it is written in; the member's or server's setting names it.
        language = synth.language_for(cleaned, await self.playback.language_setting(guild.id, author.id))
        self.playback.warm_up(guild, language)  # its voice loads while the bot joins (festival: ~0.5 s)
        async with self._state(guild.id).lock:
            await self._settle(guild.voice_client)
            client = guild.voice_client
            connected = isinstance(client, discord.VoiceClient) and client.is_connected()
            if not connected or client.channel != channel:
                if connected and has_humans(client.channel):
                    log.info("Not speaking in %s: I'm talking to people in %s", channel, client.channel)
                    return
                if (problem := join_problem(channel)) is not None:
                    log.info("Not speaking in %s (guild %s): %s", channel, guild.id, problem)
                    return
                await self._connect(channel)
                self.tie_text_channel(guild, message.channel)
                # Say so when joining to listen.
                notice = await self.listener.join_notice(guild) if self.listener is not None else ""
                if notice:
                    await message.channel.send(notice.strip(), allowed_mentions=discord.AllowedMentions.none())
            self.playback.start(guild)
            self.playback.enqueue(guild, Speech(text, names, channel.id, language))

    def tie_text_channel(self, guild: discord.Guild, channel: discord.abc.Messageable) -> None:
        """Answers to what is heard in `guild`'s voice channel are posted in `channel`."""
        channel_id = getattr(channel, "id", None)
        if channel_id is not None:
            self._text_channels[guild.id] = channel_id

    def text_channel(self, guild: discord.Guild) -> discord.abc.Messageable | None:
        channel_id = self._text_channels.get(guild.id)
        channel = guild.get_channel_or_thread(channel_id) if channel_id is not None else None
        return channel if isinstance(channel, discord.abc.Messageable) else None

    # -- connections ------------------------------------------------------------------------------
    def _state(self, guild_id: int) -> _GuildVoice:
        state = self._guilds.get(guild_id)
        if state is None:
            state = self._guilds[guild_id] = _GuildVoice()
        return state

    def _voice_client(self, client: discord.Client, channel: discord.abc.Connectable) -> ListeningVoiceClient:
        """discord.py's `connect(cls=...)`: a voice client that logs its DAVE state and hands its
        voice-gateway messages to the listening service (members are heard)."""
        return ListeningVoiceClient(client, channel,
                                    on_voice_message=self.listener.on_voice_message if self.listener else None)

    async def _connect(self, channel: VoiceChannel) -> discord.VoiceClient:
        """Connect to or move to `channel` (caller holds the guild lock); raises VoiceError."""
        guild = channel.guild
        client = guild.voice_client
        if isinstance(client, discord.VoiceClient) and client.is_connected():
            if client.channel == channel:
                self.playback.start(guild)
                return client
            # Leave and join rather than VoiceClient.move_to: in discord.py 2.7.1 a move that
            # brings a new voice server can wait ~30 s for IP discovery (the UDP reader thread
            # keeps selecting on the replaced socket).
            await self._disconnect(guild, f"moving to {channel}")
            client = guild.voice_client
        if client is not None:  # left over from a kick or a dropped connection
            await self._drop_client(client)
        log.info("Joining %s in guild %s", channel, guild.id)
        # Not deafened while listening: the voice status shows it.
        deaf = self.listener is None or not await self.listener.enabled(guild.id)
        try:
            client = await channel.connect(timeout=CONNECT_TIMEOUT, reconnect=True, self_deaf=deaf,
                                           cls=self._voice_client)
        except asyncio.TimeoutError:
            await self._drop_stale(guild)
            raise VoiceError(Phrase("Discord didn't let me into {channel} in time; please try again.",
                                    channel=bold(channel.name))) from None
        except discord.ClientException as exc:
            await self._drop_stale(guild)
            log.warning("Could not join %s: %s", channel, exc)
            raise VoiceError(Phrase("I couldn't join {channel}; please try again.", channel=bold(channel.name))) from None
        except discord.DiscordException as exc:
            await self._drop_stale(guild)
            log.warning("Could not join %s: %s", channel, exc)
            raise VoiceError(Phrase("I couldn't join {channel}; please try again.", channel=bold(channel.name))) from None
        self.playback.start(guild)
        if self.settings.speak_replies:
            self.playback.warm_up(guild)
        return client

    async def _drop_stale(self, guild: discord.Guild) -> None:
        client = guild.voice_client
        if client is not None and not (isinstance(client, discord.VoiceClient) and client.is_connected()):
            await self._drop_client(client)

    async def _drop_client(self, client: discord.VoiceProtocol) -> None:
        """Disconnect and forget a voice client, whatever state it is in."""
        if isinstance(client, discord.VoiceClient):
            client.stop()
        try:
            await asyncio.wait_for(client.disconnect(force=True), DISCONNECT_TIMEOUT)
        except (asyncio.TimeoutError, discord.DiscordException, OSError) as exc:
            log.debug("Ignoring error while disconnecting from voice: %r", exc)
        finally:
            client.cleanup()  # make sure discord.py forgets it, so a later join works

    async def _disconnect(self, guild: discord.Guild, reason: str) -> None:
        """Stop playback, drop queued replies and leave the guild's voice channel."""
        self.playback.forget(guild.id)  # not the lock: waiters keep it
        client = guild.voice_client
        if client is not None:
            log.info("Leaving %s in guild %s (%s)", getattr(client, "channel", None), guild.id, reason)
            await self._drop_client(client)

    async def _leave_idle(self, guild: discord.Guild) -> None:
        async with self._state(guild.id).lock:
            if self.playback.is_speaking(guild.id):
                return  # speaking again (a reply arrived meanwhile)
            await self._disconnect(guild, f"idle for {self.settings.voice_idle_seconds:g} s")

    # -- Discord events ---------------------------------------------------------------------------
    async def on_voice_state_update(self, member: discord.Member, before: discord.VoiceState,
                                    after: discord.VoiceState) -> None:
        """Clean up when the bot is disconnected or moved; leave when its channel has no humans."""
        guild = member.guild
        me = self.client.user
        if me is not None and member.id == me.id:
            if after.channel is None:
                self._tasks.spawn(self._after_disconnect(guild, before.channel), name=f"voice-disconnected-{guild.id}")
            elif before.channel is not None and before.channel != after.channel:
                self._tasks.spawn(self._after_move(guild), name=f"voice-moved-{guild.id}")  # dragged by a moderator
            return
        channel = getattr(guild.voice_client, "channel", None)
        if channel is not None and channel in (before.channel, after.channel) and not has_humans(channel):
            self._tasks.spawn(self._leave_if_alone(guild), name=f"voice-alone-{guild.id}")

    async def _after_disconnect(self, guild: discord.Guild, channel: discord.abc.GuildChannel | None) -> None:
        """The bot left a channel: by itself (nothing to do), or kicked / call ended: stop its
        worker and drop queued replies, so a later join starts clean."""
        async with self._state(guild.id).lock:  # a leave or move in progress finishes first
            client = guild.voice_client
            if isinstance(client, discord.VoiceClient) and client.is_connected():
                return  # already connected again (a move)
            if self.playback.has_worker(guild.id):
                log.info("Disconnected from %s in guild %s", channel, guild.id)
            self.playback.forget(guild.id)

    @staticmethod
    async def _settle(client: discord.VoiceProtocol | None) -> None:
        """Wait (a bounded time) while discord.py reconnects a voice client, e.g. after a move.

        Disconnecting in the middle of that reconnect makes it give up later with a
        disconnect of its own, which can hit the guild's next connection."""
        if isinstance(client, discord.VoiceClient) and not client.is_connected():
            await asyncio.to_thread(wait_until_connected, client, SETTLE_TIMEOUT)

    async def _after_move(self, guild: discord.Guild) -> None:
        """Moved by someone else: stay if people are there and the connection recovered,
        leave an empty channel, and connect again as a last resort when discord.py's reconnect
        is seen stalled here (its known 2.7.1 stalls after a move are fixed in
        voice/internals.py, RaceFixedConnectionState)."""
        await self._settle(guild.voice_client)
        async with self._state(guild.id).lock:
            client = guild.voice_client
            channel = getattr(client, "channel", None)
            if client is None or channel is None:
                return
            if not has_humans(channel):
                await self._disconnect(guild, f"moved to {channel}, where no one is")
                return
            if isinstance(client, discord.VoiceClient) and not client.is_connected():
                log.warning("Voice did not recover after being moved to %s in guild %s; connecting again",
                            channel, guild.id)
                await self._disconnect(guild, "reconnecting after a move")
                try:
                    await self._connect(channel)
                except VoiceError as exc:
                    log.warning("Could not reconnect to %s: %s", channel, exc.user_message)

    async def _leave_if_alone(self, guild: discord.Guild) -> None:
        """Leave once the bot's channel has had no humans for EMPTY_CHANNEL_GRACE seconds
        (people hopping between channels don't make it leave)."""
        state = self._state(guild.id)
        if state.leave_check is not None and not state.leave_check.done():
            state.leave_check.cancel()  # still in its grace period: start the grace again
        state.leave_check = asyncio.current_task()
        await asyncio.sleep(EMPTY_CHANNEL_GRACE)
        state.leave_check = None  # from here on, not cancelled by newer checks
        await self._settle(guild.voice_client)
        async with state.lock:
            client = guild.voice_client
            if client is not None and not has_humans(getattr(client, "channel", None)):
                await self._disconnect(guild, "no one left in the channel")

    async def close(self) -> None:
        """Stop playback and disconnect everywhere (bot shutdown)."""
        self.playback.stop_all()
        self._tasks.cancel_all()
        clients = list(self.client.voice_clients)
        if clients:
            log.info("Leaving %d voice channel(s)", len(clients))
            await asyncio.gather(*(self._drop_client(c) for c in clients), return_exceptions=True)
        await self.playback.close()
