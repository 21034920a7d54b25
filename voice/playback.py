"""Speaking in voice: the per-server speech queue, its worker, and the stream discord.py plays.

Each server the bot is connected in gets a queue and a worker task: replies are spoken one
after another (never "Already playing audio"), the queue is bounded, and the worker hands
the server back to the connection manager once it has had nothing to say for
VOICE_IDLE_SECONDS. A long reply is synthesised sentence by sentence while it plays, as one
continuous stream, so the first words come out as soon as the first sentence is ready.

Blocking work (text to speech, ffmpeg resampling, reading the TTS cache index) runs in
worker threads; the speech synthesiser and its voice model are only created on first use,
so the bot connects to Discord quickly and small.

Each reply is spoken in the language it is written in: its script decides, and the member's
or server's language setting (storage/languages.py) names the language within it
(audio/reply_language.py); it is chosen once per reply, when it is queued.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Callable

import discord

from audio.errors import AudioError
from audio.playback import pcm_for_discord, release_freed_memory
from audio.synthesis import SpeechSynthesizer
from config import Settings
from storage.languages import AUTO, LanguageSettings

from .tasks import BackgroundTasks

log = logging.getLogger("voice")

FRAME_BYTES = discord.opus.Encoder.FRAME_SIZE  # 20 ms of 48 kHz stereo s16le: 3840 bytes
WARM_UP_WAIT = 20.0  # seconds close() waits for a voice model that is still loading

Names = Callable[[str], "str | None"]  # a mention's id -> the name to say


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
class Speech:
    """One reply waiting to be said."""

    text: str
    names: Names
    channel_id: int
    language: str | None = None  # what it is spoken in (None: the language it is written in)
    first_clip: asyncio.Task | None = None  # its first sentence, made while the reply before plays

    def cancel(self) -> None:
        if self.first_clip is not None:
            self.first_clip.cancel()


@dataclass
class _Queue:
    """One server's replies waiting, oldest first, and the worker saying them."""

    pending: deque[Speech] = field(default_factory=deque)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    worker: asyncio.Task | None = None


def names_in_message(message: discord.Message, client: discord.Client) -> Names:
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
        user = client.get_user(snowflake)
        return user.display_name if user is not None else None

    return lookup


def names_in_guild(guild: discord.Guild) -> Names:
    """Names for member mention ids of `guild` (what the bot says unprompted)."""
    def lookup(raw_id: str) -> str | None:
        member = guild.get_member(int(raw_id)) if raw_id.isdigit() else None
        return member.display_name if member is not None else None

    return lookup


class Playback:
    """The speech queues of every server, their workers, and the speech synthesiser."""

    def __init__(self, client: discord.Client, settings: Settings, tasks: BackgroundTasks,
                 on_idle: Callable[[discord.Guild], Awaitable[None]], languages: LanguageSettings | None = None):
        self.client = client
        self.settings = settings
        self.languages = languages  # the servers' and members' language settings (None: the text decides)
        self._tasks = tasks
        self._on_idle = on_idle  # the connection manager leaves (if still idle under its lock)
        self._queues: dict[int, _Queue] = {}
        self._synth: SpeechSynthesizer | None = None
        self._synth_lock = asyncio.Lock()
        self._warmed_up: set[str] = set()  # languages whose voice is loaded (or loading)
        self._warm_ups: list[concurrent.futures.Future[None]] = []
        self.closing = False

    # -- the synthesiser --------------------------------------------------------------------------
    async def synthesizer(self) -> SpeechSynthesizer:
        """The text-to-speech service, created on first use (off the event loop)."""
        if self._synth is not None:
            return self._synth
        async with self._synth_lock:
            if self._synth is None:
                s = self.settings
                self._synth = await asyncio.to_thread(
                    SpeechSynthesizer, cache_dir=s.data_dir / "tts-cache", engines=s.tts_engines,
                    language=s.tts_language, piper_voice=s.piper_voice or None, cache_max_bytes=s.tts_cache_bytes,
                    max_chars=s.tts_max_chars, gtts_timeout=s.gtts_timeout)
        return self._synth

    def warm_up(self, guild: discord.Guild | None = None, language: str | None = None) -> None:
        """Load the voice for `language` (default: the server's) in the background: after
        joining, or while joining to speak a reply in it."""
        self._tasks.spawn(self._warm_up(guild, language), name="voice-warm-up")

    async def _warm_up(self, guild: discord.Guild | None, language: str | None) -> None:
        try:
            synth = await self.synthesizer()
            if language is None:
                setting = await self.language_setting(guild.id) if guild is not None else None
                language = synth.language_for("", setting)
            if language not in self._warmed_up:
                self._warmed_up.add(language)
                # Returns at once; a thread loads the model and logs failures.
                self._warm_ups.append(synth.warm_up(language))
        except Exception:
            log.exception("Could not prepare text to speech")

    async def language_setting(self, guild_id: int, user_id: int | None = None) -> str | None:
        """The member's (else the server's) chosen language, or None when neither chose one."""
        if self.languages is None:
            return None
        if user_id is None:
            setting = await self.languages.server(guild_id)
        else:
            choice = await self.languages.choose(guild_id, user_id)
            setting = choice.speech if choice.source in ("member", "server") else None
        return setting if setting and setting != AUTO else None

    # -- queues -----------------------------------------------------------------------------------
    def _queue(self, guild_id: int) -> _Queue:
        queue = self._queues.get(guild_id)
        if queue is None:
            queue = self._queues[guild_id] = _Queue()
        return queue

    def is_speaking(self, guild_id: int) -> bool:
        """Whether the server's worker runs (it ends once idle)."""
        queue = self._queues.get(guild_id)
        return queue is not None and queue.worker is not None and not queue.worker.done()

    def has_worker(self, guild_id: int) -> bool:
        queue = self._queues.get(guild_id)
        return queue is not None and queue.worker is not None

    def start(self, guild: discord.Guild) -> None:
        """Start the server's worker (connected: its idle countdown starts)."""
        queue = self._queue(guild.id)
        if queue.worker is None or queue.worker.done():
            queue.worker = asyncio.create_task(self._play_queue(guild.id), name=f"voice-playback-{guild.id}")

    def enqueue(self, guild: discord.Guild, speech: Speech) -> None:
        queue = self._queue(guild.id)
        if len(queue.pending) >= self.settings.playback_queue_size:
            log.warning("Playback queue of guild %s is full (%d replies waiting); not speaking this reply",
                        guild.id, len(queue.pending))
            return
        queue.pending.append(speech)
        queue.wakeup.set()

    async def say(self, guild: discord.Guild, text: str, setting: str | None = None) -> None:
        """Queue `text` where the bot is connected in `guild` (behind what it is saying); no
        join. Never raises (an answer to a member heard in voice, the listening notice).
        `setting`: the language chosen for whom it answers (default: the server's)."""
        client = guild.voice_client
        if (not self.settings.speak_replies or self.closing or not text.strip()
                or not isinstance(client, discord.VoiceClient) or not client.is_connected() or client.channel is None):
            return
        try:
            synth = await self.synthesizer()
            names = names_in_guild(guild)
            if cleaned := synth.clean(text, names):
                language = synth.language_for(cleaned, setting or await self.language_setting(guild.id))
                self.start(guild)
                self.enqueue(guild, Speech(text, names, client.channel.id, language))
        except Exception:
            log.exception("Could not say a voice answer in guild %s", guild.id)

    def forget(self, guild_id: int) -> None:
        """Stop the guild's worker and empty its queue."""
        queue = self._queues.get(guild_id)
        if queue is None:
            return
        while queue.pending:
            queue.pending.popleft().cancel()
        worker, queue.worker = queue.worker, None
        if worker is not None and worker is not asyncio.current_task():
            worker.cancel()

    def stop_all(self) -> None:
        """Shutting down: no more speech anywhere."""
        self.closing = True
        for guild_id in list(self._queues):
            self.forget(guild_id)

    async def close(self) -> None:
        """Shutting down, after stop_all: let a loading voice finish, stop festival's process."""
        loading = [asyncio.wrap_future(future) for future in self._warm_ups if not future.done()]
        if loading:
            # The model loads in native code on a daemon thread: exiting meanwhile aborts the process.
            log.info("Waiting for the voice model to finish loading before exiting")
            await asyncio.wait(loading, timeout=WARM_UP_WAIT)  # failures were logged by the warm-up
        if self._synth is not None:
            await asyncio.to_thread(self._synth.close)

    # -- the worker -------------------------------------------------------------------------------
    async def _play_queue(self, guild_id: int) -> None:
        """Speak queued replies in order; hand over after VOICE_IDLE_SECONDS with nothing to say."""
        queue = self._queue(guild_id)
        idle = self.settings.voice_idle_seconds or None  # 0 means stay until asked to leave
        while True:
            if not queue.pending:
                queue.wakeup.clear()
                try:
                    await asyncio.wait_for(queue.wakeup.wait(), idle)
                except asyncio.TimeoutError:
                    guild = self.client.get_guild(guild_id)
                    if guild is not None:
                        self._tasks.spawn(self._on_idle(guild), name=f"voice-idle-{guild_id}")
                    return
                continue
            speech = queue.pending.popleft()
            guild = self.client.get_guild(guild_id)
            if guild is None:
                return
            try:
                await self._speak(guild, speech, queue)
            except asyncio.CancelledError:
                raise
            except AudioError as exc:  # every TTS engine failed: already logged per engine
                log.warning("Could not speak a reply in guild %s: %s", guild_id, exc)
            except Exception:
                log.exception("Could not speak a reply in guild %s", guild_id)
            if not queue.pending:
                await asyncio.to_thread(release_freed_memory)

    async def _speak(self, guild: discord.Guild, speech: Speech, queue: _Queue) -> None:
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
        clips = synth.speak_clips(speech.text, speech.names, speech.language)
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
        if queue.pending and queue.pending[0].first_clip is None:
            upcoming = queue.pending[0]
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
    async def _first_clip(synth: SpeechSynthesizer, speech: Speech) -> None:
        """Synthesise (into the cache) the first sentence of a queued reply; failures are
        left for when it is spoken."""
        sentences = synth.sentences(speech.text, speech.names)
        if sentences:
            try:
                await synth.synthesize(sentences[0], speech.language)
            except Exception as exc:  # noqa: BLE001 - retried and reported when it is its turn
                log.debug("Could not prepare the next reply: %s", exc)
