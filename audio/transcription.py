"""Async transcription service: decode + speech-to-text in a bounded worker pool.

Decoding and inference block for seconds and use all CPU, so they run in a
small thread pool off the event loop. The pool is bounded: when ``workers``
jobs are running and ``queue_size`` more are waiting, new requests get
``Busy`` at once instead of piling up memory and latency.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from dataclasses import dataclass
from typing import Iterable

from audio.decode import check_upload, decode_audio
from audio.errors import AudioError, Busy
from audio.playback import release_freed_memory
from audio.stt import SpeechEngine, build_engines, transcribe_with_fallback

__all__ = ["TranscriptionService", "Transcript", "Busy"]

log = logging.getLogger("audio.stt")


@dataclass(frozen=True)
class Transcript:
    """A finished transcription."""

    text: str
    engine: str  # name of the engine that produced the text
    audio_seconds: float  # duration of the decoded audio
    elapsed: float  # seconds spent decoding + recognising (not waiting in the queue)


class TranscriptionService:
    """Turns uploaded audio bytes into text, one bounded worker pool per service."""

    def __init__(
        self,
        engines: Iterable[str | SpeechEngine] = ("whisper", "google"),
        language: str = "en",
        whisper_model: str = "tiny.en",
        max_bytes: int = 25_000_000,
        max_seconds: float = 600,
        decode_timeout: float = 60,
        google_timeout: float = 15,
        workers: int = 1,
        queue_size: int = 4,
    ):
        if workers < 1 or queue_size < 0:
            raise ValueError("workers must be >= 1 and queue_size >= 0")
        self.language = language
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds
        self.decode_timeout = decode_timeout
        self.engines: list[SpeechEngine] = build_engines(
            engines, whisper_model=whisper_model, google_timeout=google_timeout
        )
        if not any(engine.supports(language) for engine in self.engines):
            log.warning(
                "no configured speech engine (%s) supports language %r; transcription will fail",
                ", ".join(e.name for e in self.engines), language,
            )
        self._capacity = workers + queue_size
        self._pending = 0
        self._lock = threading.Lock()
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

    def transcribe_sync(self, data: bytes) -> Transcript:
        """Decode and transcribe in the calling thread (what each worker runs)."""
        started = time.perf_counter()
        try:
            audio = decode_audio(
                data, max_bytes=self.max_bytes, max_seconds=self.max_seconds, timeout=self.decode_timeout
            )
            text, engine = transcribe_with_fallback(self.engines, audio, self.language)
        except AudioError:
            raise
        except Exception as exc:  # a bug or the machine (disk full...): still a clean AudioError
            log.exception("unexpected transcription failure")
            raise AudioError(f"unexpected failure: {type(exc).__name__}: {exc}") from exc
        finally:
            release_freed_memory()  # decoding and inference free tens of MB; give them back
        elapsed = time.perf_counter() - started
        log.info("transcribed %.1f s of audio with %s in %.2f s", audio.seconds, engine, elapsed)
        return Transcript(text, engine, audio.seconds, elapsed)

    # ------------------------------------------------------------------ async

    @property
    def pending(self) -> int:
        """Jobs running or waiting right now."""
        return self._pending

    def _release(self) -> None:
        with self._lock:
            self._pending -= 1

    async def transcribe(self, data: bytes) -> Transcript:
        """Transcribe uploaded audio bytes off the event loop.

        Raises Busy when the pool and its queue are full, and other AudioError
        subclasses (bad input, silence, all engines failed) with a user_message.
        """
        if self._closed:
            raise AudioError("service closed", user_message="Transcription is shutting down, please try again later.")
        check_upload(data, self.max_bytes)  # empty / too big: no need to take a slot
        with self._lock:
            if self._pending >= self._capacity:
                raise Busy("I'm busy with other recordings right now, please try again in a minute.",
                           detail=f"{self._pending} transcription jobs pending (limit {self._capacity})")
            self._pending += 1
        loop = asyncio.get_running_loop()

        def done(_future: concurrent.futures.Future) -> None:
            # Release on the loop thread, so the count only drops between loop
            # steps, never in the middle of a burst of calls.
            try:
                loop.call_soon_threadsafe(self._release)
            except RuntimeError:  # loop already closed
                self._release()

        try:
            future = self._executor.submit(self.transcribe_sync, data)
        except RuntimeError as exc:  # executor shut down concurrently
            self._release()
            raise AudioError("service closed", user_message="Transcription is shutting down, please try again later.") from exc
        future.add_done_callback(done)
        return await asyncio.wrap_future(future)

    async def close(self) -> None:
        """Stop accepting work, drop queued jobs and wait for running ones."""
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown, True)

    async def __aenter__(self) -> "TranscriptionService":
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()
