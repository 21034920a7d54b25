"""Voice channels: joining, leaving, and speaking replies aloud.

One `VoiceManager` per bot.  Each guild the bot is connected in gets a playback
queue and a worker task: replies are spoken one after another (never "Already
playing audio"), the queue is bounded, and the worker disconnects the bot once it
has had nothing to say for VOICE_IDLE_SECONDS.  A long reply is synthesised
sentence by sentence while it plays, as one continuous stream, so the first words
come out as soon as the first sentence is ready.

Blocking work (text to speech, ffmpeg resampling, reading the TTS cache index)
runs in worker threads; the speech synthesiser and its voice model are only
created on first use, so the bot connects to Discord quickly and small.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import discord
from discord.ext import commands

from audio.errors import AudioError
from errors import UserError
from audio.playback import pcm_for_discord, release_freed_memory

from commands.kit.replies import respond
from .internals import ListeningVoiceClient, wait_until_connected

if TYPE_CHECKING:
    from audio.synthesis import SpeechSynthesizer
    from bot import ChatBot

log = logging.getLogger("voice")

CONNECT_TIMEOUT = 15.0  # seconds for the voice handshake (join or move)
DISCONNECT_TIMEOUT = 5.0
FRAME_BYTES = discord.opus.Encoder.FRAME_SIZE  # 20 ms of 48 kHz stereo s16le: 3840 bytes
EMPTY_CHANNEL_GRACE = 1.0  # seconds an empty channel is kept before leaving
SETTLE_TIMEOUT = 5.0  # seconds to let discord.py finish a reconnect (after a move) before acting
WARM_UP_WAIT = 20.0  # seconds close() waits for a voice model that is still loading


class VoiceError(UserError):
    """A voice request that can't be done; `user_message` is shown as the reply."""


def _bold(name: str) -> str:
    return f"**{discord.utils.escape_markdown(name)}**"


def has_humans(channel: discord.abc.GuildChannel | None) -> bool:
    """Whether anyone other than bots is in the voice channel."""
    members = getattr(channel, "members", None) or []
    return any(not member.bot for member in members)


def join_problem(channel: discord.VoiceChannel | discord.StageChannel) -> str | None:
    """Why the bot can't connect and speak in `channel`, or None when it can."""
    me = channel.guild.me
    if me is None:
        return "I can't see myself in this server yet; try again in a moment."
    perms = channel.permissions_for(me)
    if not perms.connect:
        return f"I don't have permission to connect to {_bold(channel.name)}."
    if not perms.speak:
        return f"I don't have permission to speak in {_bold(channel.name)}."
    limit = getattr(channel, "user_limit", 0)
    if limit and len(channel.members) >= limit and not perms.move_members and me not in channel.members:
        return f"{_bold(channel.name)} is full."
    return None


class SpeechStream(discord.AudioSource):
    """PCM audio that grows while it plays: clips are appended as they are synthesised.

    `read()` runs in discord.py's player thread every 20 ms and never blocks: when the
    next sentence is not ready yet it returns a frame of silence, so the stream (one
    utterance) has no holes; after `finish()` it ends once the buffer is drained.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._lock = threading.Lock()
        self._finished = False
        self.frames = 0
        self.padding_frames = 0  # silence inserted while waiting for synthesis

    def add(self, pcm: bytes) -> None:
        with self._lock:
            self._buffer += pcm

    def finish(self) -> None:
        with self._lock:
            self._finished = True

    def read(self) -> bytes:
        with self._lock:
            if len(self._buffer) >= FRAME_BYTES:
                frame = bytes(self._buffer[:FRAME_BYTES])
                del self._buffer[:FRAME_BYTES]
            elif self._finished:
                if not self._buffer:
                    return b""
                frame = bytes(self._buffer).ljust(FRAME_BYTES, b"\0")
                self._buffer.clear()
            else:
                self.padding_frames += 1
                frame = bytes(FRAME_BYTES)
        self.frames += 1
        return frame

    def is_opus(self) -> bool:
        return False

    def cleanup(self) -> None:
        with self._lock:
            self._finished = True
            self._buffer.clear()


@dataclass
class _Speech:
    text: str
    names: Callable[[str], str | None]
    channel_id: int
    first_clip: asyncio.Task | None = None  # its first sentence, made while the reply before plays

    def cancel(self) -> None:
        if self.first_clip is not None:
            self.first_clip.cancel()


@dataclass
class _GuildVoice:
    """Per-guild state: a lock for connecting/leaving, the playback queue and its worker."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    pending: deque[_Speech] = field(default_factory=deque)  # replies waiting, oldest first
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    worker: asyncio.Task | None = None
    leave_check: asyncio.Task | None = None  # an empty-channel check in its grace period


class VoiceManager:
    def __init__(self, bot: ChatBot):
        self.bot = bot
        self.settings = bot.settings
        self._guilds: dict[int, _GuildVoice] = {}
        self._synth: SpeechSynthesizer | None = None
        self._synth_lock = asyncio.Lock()
        self._warmed_up = False
        self._warm_up_done: concurrent.futures.Future[None] | None = None
        self._closing = False
        self._tasks: set[asyncio.Task] = set()
        self._text_channels: dict[int, int] = {}  # guild id -> text channel tied to its voice session
        bot.add_listener(self.on_voice_state_update)

    # -- commands -------------------------------------------------------------------------------
    async def join(self, ctx: commands.Context) -> None:
        """`!join`: connect to (or move to) the author's voice channel."""
        guild = ctx.guild
        author = ctx.author
        voice = author.voice if isinstance(author, discord.Member) else None
        if guild is None or voice is None or voice.channel is None:
            raise VoiceError(f"You're not in a voice channel. Join one first, then use `{ctx.clean_prefix}join`.")
        channel = voice.channel
        state = self._state(guild.id)
        async with state.lock:
            await self._settle(guild.voice_client)
            current = guild.voice_client
            if isinstance(current, discord.VoiceClient) and current.is_connected() and current.channel == channel:
                await respond(ctx, f"I'm already in {_bold(channel.name)}.")
                return
            moved = isinstance(current, discord.VoiceClient) and current.is_connected()
            if (problem := join_problem(channel)) is not None:
                raise VoiceError(problem)
            await self._connect(channel)
        self.tie_text_channel(guild, ctx.channel)
        text = f"{'Moved to' if moved else 'Joined'} {_bold(channel.name)}."
        if self.settings.speak_replies:
            text += f" I'll read my answers aloud here; `{ctx.clean_prefix}leave` to make me go."
        listening = getattr(self.bot, "voice_listening", None)  # commands/listen_cog.py
        if listening is not None:
            text += await listening.join_notice(guild)
        await respond(ctx, text)

    async def leave(self, ctx: commands.Context) -> None:
        """`!leave`: disconnect from the guild's voice channel."""
        guild = ctx.guild
        if guild is None:
            raise VoiceError("I'm not in a voice channel.")
        async with self._state(guild.id).lock:
            await self._settle(guild.voice_client)
            client = guild.voice_client
            connected = isinstance(client, discord.VoiceClient) and client.is_connected()
            name = client.channel.name if connected and client.channel else ""
            await self._disconnect(guild, "asked to leave")
        if not connected:
            raise VoiceError("I'm not in a voice channel.")
        await respond(ctx, f"Left {_bold(name)}.")

    # -- speaking replies -------------------------------------------------------------------------
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
        if not self.settings.speak_replies or self._closing or not text or not text.strip():
            return
        guild = message.guild
        author = listener or message.author
        if guild is None or not isinstance(author, discord.Member):
            return
        channel = author.voice.channel if author.voice else None
        if channel is None:
            return
        synth = await self.synthesizer()
        names = self._name_lookup(message)
        if not synth.clean(text, names):
            log.debug("Nothing to say aloud for message %s", message.id)
            return
        state = self._state(guild.id)
        async with state.lock:
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
                listening = getattr(self.bot, "voice_listening", None)  # say so when joining to listen
                notice = await listening.join_notice(guild) if listening is not None else ""
                if notice:
                    await message.channel.send(notice.strip(), allowed_mentions=discord.AllowedMentions.none())
            self._start_worker(guild)
            self._enqueue(guild, _Speech(text, names, channel.id))

    async def say(self, guild: discord.Guild, text: str) -> None:
        """Queue `text` where the bot is connected in `guild` (behind what it is saying); no
        join. Never raises (an answer to a member heard in voice, the listening notice)."""
        client = guild.voice_client
        if (not self.settings.speak_replies or self._closing or not text.strip()
                or not isinstance(client, discord.VoiceClient) or not client.is_connected() or client.channel is None):
            return
        try:
            synth = await self.synthesizer()

            def names(raw_id: str) -> str | None:
                member = guild.get_member(int(raw_id)) if raw_id.isdigit() else None
                return member.display_name if member is not None else None

            if synth.clean(text, names):
                self._start_worker(guild)
                self._enqueue(guild, _Speech(text, names, client.channel.id))
        except Exception:
            log.exception("Could not say a voice answer in guild %s", guild.id)

    def tie_text_channel(self, guild: discord.Guild, channel: discord.abc.Messageable) -> None:
        """Answers to what is heard in `guild`'s voice channel are posted in `channel`."""
        channel_id = getattr(channel, "id", None)
        if channel_id is not None:
            self._text_channels[guild.id] = channel_id

    def text_channel(self, guild: discord.Guild) -> discord.abc.Messageable | None:
        channel_id = self._text_channels.get(guild.id)
        channel = guild.get_channel_or_thread(channel_id) if channel_id is not None else None
        return channel if isinstance(channel, discord.abc.Messageable) else None

    def _enqueue(self, guild: discord.Guild, speech: _Speech) -> None:
        state = self._state(guild.id)
        if len(state.pending) >= self.settings.playback_queue_size:
            log.warning("Playback queue of guild %s is full (%d replies waiting); not speaking this reply",
                        guild.id, len(state.pending))
            return
        state.pending.append(speech)
        state.wakeup.set()

    def _name_lookup(self, message: discord.Message) -> Callable[[str], str | None]:
        """Names for mention ids in a reply: people, roles and channels of the message's guild."""
        guild = message.guild
        mentioned = {user.id: user for user in message.mentions}
        mentioned[message.author.id] = message.author

        def lookup(raw_id: str) -> str | None:
            try:
                snowflake = int(raw_id)
            except ValueError:
                return None
            if snowflake in mentioned:
                return mentioned[snowflake].display_name
            if guild is not None:
                member = guild.get_member(snowflake)
                if member is not None:
                    return member.display_name
                role = guild.get_role(snowflake)
                if role is not None:
                    return role.name
                channel = guild.get_channel_or_thread(snowflake)
                if channel is not None:
                    return channel.name
            user = self.bot.get_user(snowflake)
            return user.display_name if user is not None else None

        return lookup

    async def synthesizer(self) -> SpeechSynthesizer:
        """The text-to-speech service, created on first use (off the event loop)."""
        if self._synth is not None:
            return self._synth
        async with self._synth_lock:
            if self._synth is None:
                from audio.synthesis import SpeechSynthesizer

                s = self.settings
                self._synth = await asyncio.to_thread(
                    SpeechSynthesizer, cache_dir=s.data_dir / "tts-cache", engines=s.tts_engines,
                    language=s.tts_language, piper_voice=s.piper_voice or None, cache_max_bytes=s.tts_cache_bytes,
                    max_chars=s.tts_max_chars, gtts_timeout=s.gtts_timeout)
        return self._synth

    async def _warm_up(self) -> None:
        """Load the voice model in the background after the first join."""
        if self._warmed_up:
            return
        self._warmed_up = True
        try:
            synth = await self.synthesizer()
            # Returns at once; a thread loads the model and logs failures.
            self._warm_up_done = synth.warm_up()
        except Exception:
            log.exception("Could not prepare text to speech")

    # -- connections ------------------------------------------------------------------------------
    def _state(self, guild_id: int) -> _GuildVoice:
        state = self._guilds.get(guild_id)
        if state is None:
            state = self._guilds[guild_id] = _GuildVoice()
        return state

    async def _connect(self, channel: discord.VoiceChannel | discord.StageChannel) -> discord.VoiceClient:
        """Connect to or move to `channel` (caller holds the guild lock); raises VoiceError."""
        guild = channel.guild
        client = guild.voice_client
        if isinstance(client, discord.VoiceClient) and client.is_connected():
            if client.channel == channel:
                self._start_worker(guild)
                return client
            # Leave and join rather than VoiceClient.move_to: in discord.py 2.7.1 a move that
            # brings a new voice server can wait ~30 s for IP discovery (the UDP reader thread
            # keeps selecting on the replaced socket).
            await self._disconnect(guild, f"moving to {channel}")
            client = guild.voice_client
        if client is not None:  # left over from a kick or a dropped connection
            await self._drop_client(client)
        log.info("Joining %s in guild %s", channel, guild.id)
        listening = getattr(self.bot, "voice_listening", None)  # commands/listen_cog.py
        deaf = listening is None or not await listening.enabled(guild.id)  # the status shows listening
        try:
            client = await channel.connect(timeout=CONNECT_TIMEOUT, reconnect=True, self_deaf=deaf,
                                           cls=ListeningVoiceClient)  # logs its DAVE state, hears members
        except asyncio.TimeoutError:
            await self._drop_stale(guild)
            raise VoiceError(f"Discord didn't let me into {_bold(channel.name)} in time; "
                             "please try again.") from None
        except discord.ClientException as exc:
            await self._drop_stale(guild)
            log.warning("Could not join %s: %s", channel, exc)
            raise VoiceError(f"I couldn't join {_bold(channel.name)}; please try again.") from None
        except discord.DiscordException as exc:
            await self._drop_stale(guild)
            log.warning("Could not join %s: %s", channel, exc)
            raise VoiceError(f"I couldn't join {_bold(channel.name)}; please try again.") from None
        self._start_worker(guild)
        if self.settings.speak_replies:
            self._spawn(self._warm_up())
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
        self._forget(guild.id)
        client = guild.voice_client
        if client is not None:
            log.info("Leaving %s in guild %s (%s)", getattr(client, "channel", None), guild.id, reason)
            await self._drop_client(client)

    def _forget(self, guild_id: int) -> None:
        """Stop the guild's worker and empty its queue (not the lock: waiters keep it)."""
        state = self._guilds.get(guild_id)
        if state is None:
            return
        while state.pending:
            state.pending.popleft().cancel()
        worker, state.worker = state.worker, None
        if worker is not None and worker is not asyncio.current_task():
            worker.cancel()

    def _start_worker(self, guild: discord.Guild) -> None:
        state = self._state(guild.id)
        if state.worker is None or state.worker.done():
            state.worker = asyncio.create_task(self._play_queue(guild.id), name=f"voice-playback-{guild.id}")

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- playback ---------------------------------------------------------------------------------
    async def _play_queue(self, guild_id: int) -> None:
        """Speak queued replies in order; leave after VOICE_IDLE_SECONDS with nothing to say."""
        state = self._state(guild_id)
        idle = self.settings.voice_idle_seconds or None  # 0 means stay until asked to leave
        while True:
            if not state.pending:
                state.wakeup.clear()
                try:
                    await asyncio.wait_for(state.wakeup.wait(), idle)
                except asyncio.TimeoutError:
                    guild = self.bot.get_guild(guild_id)
                    if guild is not None:
                        self._spawn(self._leave_idle(guild))
                    return
                continue
            speech = state.pending.popleft()
            guild = self.bot.get_guild(guild_id)
            if guild is None:
                return
            try:
                await self._speak(guild, speech, state)
            except asyncio.CancelledError:
                raise
            except AudioError as exc:  # every TTS engine failed: already logged per engine
                log.warning("Could not speak a reply in guild %s: %s", guild_id, exc)
            except Exception:
                log.exception("Could not speak a reply in guild %s", guild_id)
            if not state.pending:
                await asyncio.to_thread(release_freed_memory)

    async def _leave_idle(self, guild: discord.Guild) -> None:
        state = self._state(guild.id)
        async with state.lock:
            if state.worker is not None and not state.worker.done():
                return  # speaking again (a reply arrived meanwhile)
            await self._disconnect(guild, f"idle for {self.settings.voice_idle_seconds:g} s")

    async def _speak(self, guild: discord.Guild, speech: _Speech, state: _GuildVoice) -> None:
        """Synthesise `speech` sentence by sentence into one stream and wait until it is played;
        meanwhile make the first sentence of the next reply, so replies follow without a pause."""
        synth = await self.synthesizer()
        if speech.first_clip is not None:
            await asyncio.wait([speech.first_clip])  # its audio is in the cache now (or it failed)
        loop = asyncio.get_running_loop()
        stream: SpeechStream | None = None
        played: asyncio.Future[Exception | None] = loop.create_future()

        def after(error: Exception | None) -> None:  # called in the player thread
            try:
                loop.call_soon_threadsafe(lambda: played.done() or played.set_result(error))
            except RuntimeError:  # the loop is closed: shutting down
                pass

        failure: Exception | None = None
        clips = synth.speak_clips(speech.text, speech.names)
        try:
            async for clip in clips:
                pcm = await asyncio.to_thread(pcm_for_discord, clip.path)
                if stream is None:
                    client = guild.voice_client
                    if not isinstance(client, discord.VoiceClient) or not client.is_connected():
                        log.info("Not connected in guild %s any more; dropping a reply", guild.id)
                        return
                    stream = SpeechStream()
                    stream.add(pcm)
                    client.play(stream, after=after, signal_type="voice")
                    log.debug("Speaking in %s: %r", client.channel, clip.text[:60])
                elif played.done():
                    break  # stopped (left, kicked): no point making the rest
                else:
                    stream.add(pcm)
        except Exception as exc:  # synthesis failed part-way: still play what was made
            failure = exc
        finally:
            await clips.aclose()
            if stream is not None:
                stream.finish()
        if state.pending and state.pending[0].first_clip is None:
            upcoming = state.pending[0]
            upcoming.first_clip = asyncio.create_task(self._first_clip(synth, upcoming))
        if stream is not None:
            error = await played  # the next reply must not start before this one ends
            if error is not None:
                log.warning("Playback in guild %s failed: %s", guild.id, error)
            elif stream.padding_frames:
                log.info("Speech in guild %s paused %d ms waiting for synthesis", guild.id,
                         stream.padding_frames * 20)
        if failure is not None:
            raise failure

    @staticmethod
    async def _first_clip(synth: SpeechSynthesizer, speech: _Speech) -> None:
        """Synthesise (into the cache) the first sentence of a queued reply; failures are
        left for when it is spoken."""
        sentences = synth.sentences(speech.text, speech.names)
        if sentences:
            try:
                await synth.synthesize(sentences[0])
            except Exception as exc:  # noqa: BLE001 - retried and reported when it is its turn
                log.debug("Could not prepare the next reply: %s", exc)

    # -- Discord events ---------------------------------------------------------------------------
    async def on_voice_state_update(self, member: discord.Member, before: discord.VoiceState,
                                    after: discord.VoiceState) -> None:
        """Clean up when the bot is disconnected or moved; leave when its channel has no humans."""
        guild = member.guild
        me = self.bot.user
        if me is not None and member.id == me.id:
            if after.channel is None:
                self._spawn(self._after_disconnect(guild, before.channel))
            elif before.channel is not None and before.channel != after.channel:
                self._spawn(self._after_move(guild))  # dragged by a moderator
            return
        channel = getattr(guild.voice_client, "channel", None)
        if channel is not None and channel in (before.channel, after.channel) and not has_humans(channel):
            self._spawn(self._leave_if_alone(guild))

    async def _after_disconnect(self, guild: discord.Guild, channel: discord.abc.GuildChannel | None) -> None:
        """The bot left a channel: by itself (nothing to do), or kicked / call ended: stop its
        worker and drop queued replies, so a later join starts clean."""
        async with self._state(guild.id).lock:  # a leave or move in progress finishes first
            client = guild.voice_client
            if isinstance(client, discord.VoiceClient) and client.is_connected():
                return  # already connected again (a move)
            if self._state(guild.id).worker is not None:
                log.info("Disconnected from %s in guild %s", channel, guild.id)
            self._forget(guild.id)

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
        voice_internals.RaceFixedConnectionState)."""
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
        self._closing = True
        for guild_id in list(self._guilds):
            self._forget(guild_id)
        for task in list(self._tasks):
            task.cancel()
        clients = list(self.bot.voice_clients)
        if clients:
            log.info("Leaving %d voice channel(s)", len(clients))
            await asyncio.gather(*(self._drop_client(c) for c in clients), return_exceptions=True)
        if self._warm_up_done is not None and not self._warm_up_done.done():
            # The model loads in native code on a daemon thread: exiting meanwhile aborts the process.
            log.info("Waiting for the voice model to finish loading before exiting")
            try:
                await asyncio.wait_for(asyncio.wrap_future(self._warm_up_done), WARM_UP_WAIT)
            except Exception:  # noqa: BLE001 - timed out or failed: nothing more to do
                pass
