"""Async transcription service: decode + speech-to-text in a bounded, fair worker pool.

Decoding and inference block for seconds and use all CPU, so they run in a
small thread pool off the event loop.  Jobs wait in a ``FairQueue`` keyed by
scope (a server, or one user's DMs): scopes take turns, so one server's burst
of voice messages delays another server by at most one job; a scope over its
share of the ``queue_size`` waiting places (``scope_queue_size``) gets ``Busy``
with an estimated ``retry_after`` instead of piling up memory and latency.

An upload is admitted before it is downloaded: ``transcribe`` takes the bytes, or an async
callable that fetches them (``fetch=attachment.read``), called only once the queue took the
job; a refused upload is never downloaded, so a flood of large files holds at most one
download per queue place in memory.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import time
from dataclasses import dataclass
from typing import Awaitable, Callable, Hashable, Iterable

from audio.decode import DecodedAudio, check_upload, decode_audio, too_big
from audio.errors import AudioError, AudioTooLarge, Busy, NoSpeech
from audio.fair_queue import FairQueue
from audio.playback import release_freed_memory
from audio.spoken_language import AUTO, RecentLanguages
from audio.stt import SpeechEngine, base_language, build_engines, recognise, split_on_silence
from errors import Phrase

__all__ = ["TranscriptionService", "Transcript", "Busy", "Fetch"]

Fetch = Callable[[], Awaitable[bytes]]  # downloads the upload (e.g. ``discord.Attachment.read``)

log = logging.getLogger("audio.stt")

_SHUTTING_DOWN = Phrase("Transcription is shutting down, please try again later.")


@dataclass(frozen=True)
class Transcript:
    """A finished transcription."""

    text: str
    engine: str  # name of the engine that produced the text
    audio_seconds: float  # duration of the decoded audio
    elapsed: float  # seconds spent decoding + recognising (not waiting in the queue)
    language: str | None = None  # the language it was heard in (given, or detected), None if unknown


class TranscriptionService:
    """Turns uploaded audio bytes into text, one bounded worker pool per service."""

    def __init__(
        self,
        engines: Iterable[str | SpeechEngine] = ("whisper", "google"),
        language: str = "en",
        whisper_model: str = "tiny.en",
        whisper_english_model: str | None = None,
        max_bytes: int = 25_000_000,
        max_seconds: float = 600,
        decode_timeout: float = 60,
        google_timeout: float = 15,
        workers: int = 1,
        queue_size: int = 4,
        scope_queue_size: int | None = None,
        model_cache_dir: str | os.PathLike | None = None,
        slice_seconds: float = 120.0,
        voice_engines: Iterable[str] = ("whisper",),
    ):
        """``queue_size`` jobs may wait in all; one scope at most ``scope_queue_size`` of them
        (default: half, at least one), and a scope holding more than its share of a full
        queue is pushed back when another scope arrives.  Recordings longer than
        ``slice_seconds`` are recognised in parts cut at pauses, taking turns with other
        scopes between parts, so one long upload delays others by one part at most.  (A
        67 s recording cut at 60 s: WER 0.027 instead of 0.014, ~10% more CPU; hence a
        slice long enough to leave ordinary voice messages whole.)
        ``model_cache_dir`` keeps the int8 copy of the whisper model (``audio.whisper_int8``).
        ``language`` is what is heard when a job names none: a code, or ``auto`` (detected, with
        each scope's recent languages as the prior for unsure detections, ``audio.spoken_language``);
        ``whisper_english_model`` hears English instead of ``whisper_model`` when set.
        ``voice_engines`` recognise live voice (``transcribe(..., live=True)``): local ones by
        default, so what members say in a voice channel never leaves the machine, whatever
        ``engines`` uploads may use (an engine named in both is one object, loaded once)."""
        if workers < 1 or queue_size < 0:
            raise ValueError("workers must be >= 1 and queue_size >= 0")
        if scope_queue_size is None:
            scope_queue_size = max(1, (queue_size + 1) // 2)
        self.language = language
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds
        self.decode_timeout = decode_timeout
        self.slice_seconds = slice_seconds
        makers = {"whisper_model": whisper_model, "whisper_english_model": whisper_english_model,
                  "google_timeout": google_timeout, "model_cache_dir": model_cache_dir}
        self.engines: list[SpeechEngine] = build_engines(engines, **makers)
        by_name = {engine.name: engine for engine in self.engines}
        self.voice_engines: list[SpeechEngine] = [
            by_name.get(name) or build_engines([name], **makers)[0] for name in voice_engines]
        self.recent = RecentLanguages()  # each scope's recently heard languages (for auto)
        if not self.voice_engines:
            raise ValueError("voice_engines must name at least one engine")
        if not any(engine.supports(language) for engine in self.engines):
            log.warning(
                "no configured speech engine (%s) supports language %r; transcription will fail",
                ", ".join(e.name for e in self.engines), language,
            )
        self._queue = FairQueue(
            slots=workers, per_scope=scope_queue_size, max_waiting=queue_size, job_seconds=10.0,
            busy_message=Phrase("I'm busy with other recordings right now; please try again in {wait}."))
        self._closed = False
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stt")

    # ------------------------------------------------------------------ blocking

    def warm_up(self) -> float:
        """Load the engines' models now (blocking); returns the seconds it took.

        Call at start-up (in a thread if the loop is already running) so the
        first voice message doesn't pay for model loading. Failures are left
        for transcription time, where the fallback handles them.
        """
        started = time.perf_counter()
        for engine in self.engines:
            if engine.supports(self.language):
                try:
                    engine.warm_up()
                except AudioError:
                    pass
        return time.perf_counter() - started

    def transcribe_sync(self, data: bytes, language: str | None = None, scope: Hashable = None) -> Transcript:
        """Decode and transcribe in the calling thread, in one go (no turns taken)."""
        started = time.perf_counter()
        audio = self._decode(data)
        text, engine, heard_in = self._recognise(audio, False, language or self.language, scope)
        return self._finished(text, engine, audio, time.perf_counter() - started, heard_in)

    def _decode(self, data: bytes) -> DecodedAudio:
        with self._clean_failures():
            return decode_audio(data, max_bytes=self.max_bytes, max_seconds=self.max_seconds,
                                timeout=self.decode_timeout)

    def _recognise(self, audio: DecodedAudio, live: bool, language: str,
                   scope: Hashable) -> tuple[str, str, str | None]:
        """(text, engine, language heard in); for ``auto``, a language known surely joins ``scope``'s
        recent languages (its usual language is the one tried first next time)."""
        with self._clean_failures():
            heard, engine = recognise(self.voice_engines if live else self.engines, audio, language,
                                      self.recent.usual(scope))
        if language == AUTO and heard.language and heard.sure:
            self.recent.add(scope, heard.language)
        return heard.text, engine, heard.language

    @contextlib.contextmanager
    def _clean_failures(self):
        try:
            yield
        except AudioError:
            raise
        except Exception as exc:  # a bug or the machine (disk full...): still a clean AudioError
            log.exception("unexpected transcription failure")
            raise AudioError(f"unexpected failure: {type(exc).__name__}: {exc}") from exc
        finally:
            release_freed_memory()  # decoding and inference free tens of MB; give them back

    def _finished(self, text: str, engine: str, audio: DecodedAudio, elapsed: float,
                  language: str | None = None) -> Transcript:
        log.info("transcribed %.1f s of audio with %s in %.2f s (%s)", audio.seconds, engine, elapsed, language)
        return Transcript(text, engine, audio.seconds, elapsed, language)

    # ------------------------------------------------------------------ async

    @property
    def pending(self) -> int:
        """Jobs running or waiting right now."""
        return self._queue.running + self._queue.waiting

    async def transcribe(self, data: bytes | None = None, scope: Hashable = None, *,
                         fetch: Fetch | None = None, size: int | None = None, live: bool = False,
                         language: str | None = None) -> Transcript:
        """Transcribe uploaded audio off the event loop, in ``scope``'s turn.

        Give the audio as ``data``, or as ``fetch``: an async callable returning the bytes,
        awaited only once the job is admitted to the queue (``size``, the upload's declared
        size, refuses a too-big one before that).  ``scope`` is whose share the job uses (a
        server id, "dm-<user id>").  Raises Busy when that scope's share (or the whole queue)
        is full, with ``retry_after``, and other AudioError subclasses (bad input, silence,
        download failed, all engines failed) with a user_message.  ``live``: speech heard in a
        voice channel, recognised by ``voice_engines`` only.  ``language``: what to hear it in (a
        code or ``auto``; the member's or server's choice), by default the service's ``language``.
        """
        language = base_language(language or self.language)
        if (data is None) == (fetch is None):
            raise TypeError("give either data or fetch")
        if self._closed:
            raise AudioError("service closed", user_message=_SHUTTING_DOWN)
        if data is not None:
            check_upload(data, self.max_bytes)  # empty / too big: no need to take a place
        elif size is not None and size > self.max_bytes:
            raise AudioTooLarge(f"declared {size} bytes > {self.max_bytes}",
                                user_message=too_big(self.max_bytes))
        ticket = self._queue.admit(scope)  # Busy here: nothing downloaded
        if fetch is not None:
            try:
                data = await self._download(fetch)  # while waiting for a turn
            except BaseException:
                ticket.cancel()
                raise
        await ticket.wait()
        loop = asyncio.get_running_loop()
        working: list[concurrent.futures.Future] = []  # the worker thread's current step

        def in_worker(fn, *args):
            try:
                working[:] = [self._executor.submit(fn, *args)]
            except RuntimeError as exc:  # executor shut down concurrently
                raise AudioError("service closed",
                                 user_message=_SHUTTING_DOWN) from exc
            return asyncio.wrap_future(working[0])

        def release_when_idle(future: concurrent.futures.Future) -> None:
            try:  # the queue is single-threaded: release on the loop thread
                loop.call_soon_threadsafe(ticket.release)
            except RuntimeError:  # loop already closed
                pass

        try:
            started = time.perf_counter()
            audio = await in_worker(self._decode, data)
            parts = split_on_silence(audio, self.slice_seconds) if audio.seconds > self.slice_seconds else [audio]
            texts, engines, heard_in = [], [], []
            for index, part in enumerate(parts):
                if index:
                    spent = time.perf_counter() - started
                    await ticket.pass_turn()  # a long recording takes turns with other servers
                    started = time.perf_counter() - spent
                try:
                    text, engine, lang = await in_worker(self._recognise, part, live, language, scope)
                except NoSpeech:
                    if len(parts) == 1:
                        raise
                    continue  # a long pause between two parts of a long recording
                texts.append(text)
                engines.append(engine)
                heard_in.append(lang)
                if language == AUTO and lang:
                    language = lang  # the next parts of a long recording: the language of the first
            if not texts:
                raise NoSpeech(f"no speech in any of {len(parts)} parts")
            text = " ".join(t.strip() for t in texts)
            return self._finished(text, ",".join(dict.fromkeys(engines)), audio, time.perf_counter() - started,
                                  heard_in[0])
        finally:
            if working and not working[0].done():  # cancelled while a thread works: free the slot after it
                working[0].add_done_callback(release_when_idle)
            else:
                ticket.release()

    async def _download(self, fetch: Fetch) -> bytes:
        try:
            data = await fetch()
        except (AudioError, asyncio.CancelledError):
            raise
        except Exception as exc:  # the platform's own errors (deleted message, network): not ours to import
            log.warning("could not download an upload to transcribe: %s: %s", type(exc).__name__, exc)
            raise AudioError(f"download failed: {type(exc).__name__}: {exc}",
                             user_message=Phrase("I couldn't download that file; please try again.")) from exc
        check_upload(data, self.max_bytes)  # empty, or bigger than it said
        return data

    async def close(self) -> None:
        """Stop accepting work, drop queued jobs and wait for running ones."""
        self._closed = True
        self._queue.close(AudioError("service closed",
                                     user_message=_SHUTTING_DOWN))
        self._executor.shutdown(wait=False, cancel_futures=True)
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown, True)

    async def __aenter__(self) -> "TranscriptionService":
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()
