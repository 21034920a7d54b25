"""The async text-to-speech service the bot uses: clean, split, cache, synthesise off the loop.

Synthesis and ffmpeg block for up to a second, so they run in worker threads;
a cache hit is only a dictionary look-up plus a WAV header read, done inline so
a cached reply starts playing in a few milliseconds.

A reply is spoken in the language it is written in (``audio.reply_language``: the
text's script, the member's or server's setting within it, else ``language``); the
engines that speak that language are tried in the configured order.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
import wave
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from audio.reply_language import reply_language
from audio.speech_text import MORE, MORE_IN, NameLookup, chunk_text, clean_text, split_sentences
from audio.tts import FestivalEngine, PiperEngine, build_engines, primary_language, speak
from audio.tts_cache import CachedPhrase, PhraseCache, phrase_key

log = logging.getLogger("audio.tts")

_WARM_UP_TEXT = {"en": "Hello.", "ru": "Привет."}
FIRST_CLIP_CHARS = 80
"""Longest first clip: piper makes ~80 characters in ~0.5 s here, keeping the first voice packet under 1 s."""


@dataclass(frozen=True)
class Clip:
    """One playable WAV (16-bit mono PCM) for ``text``; hand ``path`` to ffmpeg."""

    path: Path
    seconds: float
    sample_rate: int
    engine: str
    cached: bool
    text: str
    language: str = ""


class SpeechSynthesizer:
    """Speaks cleaned text with the first working engine, caching every phrase on disk."""

    def __init__(
        self,
        *,
        cache_dir: Path | str,
        engines: Sequence[str] = ("piper", "festival", "gtts", "espeak"),
        language: str = "en",
        piper_voice: Path | str | None = None,
        cache_max_bytes: int = 50_000_000,
        max_chars: int = 400,
        gtts_timeout: float = 10,
    ):
        self.language = language  # Latin-script text without a language setting is spoken in this
        self.max_chars = max_chars
        self._engines = build_engines(engines, piper_voice=piper_voice, gtts_timeout=gtts_timeout)
        self._cache = PhraseCache(cache_dir, cache_max_bytes)
        self._voice_ids: dict[str, str] = {}

    @property
    def cache(self) -> PhraseCache:
        return self._cache

    def clean(self, raw: str, names: NameLookup = None) -> str:
        """Words to speak for a Discord message; ``""`` means nothing to say. A reply cut at
        ``max_chars`` ends with "and more" in its language."""
        more = MORE_IN.get(primary_language(self.language_for(raw)), MORE)
        return clean_text(raw, names, self.max_chars, more)

    def sentences(self, raw: str, names: NameLookup = None) -> list[str]:
        """The cleaned message split into the pieces ``speak_clips`` voices, one clip each.

        A long first sentence is cut at a clause (or word) so the first clip is
        made in about half a second; later ones are made while earlier ones play.
        """
        sentences = split_sentences(self.clean(raw, names))
        if sentences and len(sentences[0]) > FIRST_CLIP_CHARS:
            sentences[:1] = chunk_text(sentences[0], FIRST_CLIP_CHARS)
        return sentences

    def language_for(self, text: str, setting: str | None = None) -> str:
        """The language to speak cleaned ``text`` in; ``setting`` is the member's or server's."""
        return reply_language(text, setting, self.language)

    def cached_clip(self, text: str, language: str | None = None) -> Clip | None:
        """The clip for already-cleaned ``text`` if it is cached (fast, no synthesis).

        ``language`` None: the language ``text`` is written in (``language_for``)."""
        language = language or self.language_for(text)
        key = self._key(text, language)
        entry = self._cache.get(key)
        if entry is None:
            return None
        try:
            return _clip(entry, text, language, cached=True)
        except (OSError, EOFError, wave.Error) as exc:  # evicted meanwhile, or damaged on disk
            log.warning("tts cache entry %s unusable (%s); synthesising again", entry.path.name, exc)
            self._cache.discard(key)
            return None

    def synthesize_blocking(self, text: str, language: str | None = None) -> Clip:
        """Plain blocking version of ``synthesize``, for worker threads and scripts."""
        text, language, hit = self._cleaned_or_cached(text, language)
        if hit is not None:
            return hit
        started = time.perf_counter()
        speech = speak(self._engines, text, language)
        entry = self._cache.put(self._key(text, language), speech.wav, speech.engine)
        clip = _clip(entry, text, language, cached=False)
        log.debug("tts %s made %.1f s of audio in %.2f s", clip.engine, clip.seconds,
                  time.perf_counter() - started)
        return clip

    async def synthesize(self, text: str, language: str | None = None) -> Clip:
        """One clip for the whole (already cleaned) ``text``, in ``language`` (None: the one
        it is written in).

        Raises ``ValueError`` for blank text and ``audio.tts.SpeechFailed``
        (an ``AudioError``) when no engine could speak it.
        """
        text, language, hit = self._cleaned_or_cached(text, language)
        if hit is not None:
            return hit  # no thread hop for a cached clip
        return await asyncio.to_thread(self.synthesize_blocking, text, language)

    def _cleaned_or_cached(self, text: str, language: str | None) -> tuple[str, str, Clip | None]:
        text = text.strip()
        if not text:
            raise ValueError("nothing to say")
        language = language or self.language_for(text)
        return text, language, self.cached_clip(text, language)

    async def speak_clips(self, raw_text: str, names: NameLookup = None,
                          language: str | None = None) -> AsyncIterator[Clip]:
        """Clean ``raw_text`` and yield one clip per sentence, in order, all in ``language``
        (None: the language the whole reply is written in).

        While the caller plays a clip, the next sentence is already being made
        (one sentence ahead, never more). Yields nothing when there is nothing
        to say. Closing the generator early abandons the look-ahead.
        """
        sentences = self.sentences(raw_text, names)
        if not sentences:
            return
        language = language or self.language_for(" ".join(sentences))
        pending = asyncio.ensure_future(self.synthesize(sentences[0], language))
        try:
            for sentence in sentences[1:]:
                clip = await pending
                pending = asyncio.ensure_future(self.synthesize(sentence, language))
                yield clip
            yield await pending
        finally:
            if not pending.done():
                pending.cancel()  # the worker thread still finishes and fills the cache
            elif not pending.cancelled():
                pending.exception()  # consumed, so asyncio does not warn about it

    def warm_up(self, language: str | None = None) -> concurrent.futures.Future[None]:
        """Load the local voice that speaks ``language`` first (piper, or festival's process) and
        run it once, in a background thread; returns at once.

        The returned future completes when the voice is ready, or at once when the first
        engine for the language (default: ``self.language``) has nothing to load.
        """
        language = language or self.language
        done: concurrent.futures.Future[None] = concurrent.futures.Future()
        first = next((e for e in self._engines if e.supports(language)), None)
        if not isinstance(first, (PiperEngine, FestivalEngine)):
            done.set_result(None)
            return done
        text = _WARM_UP_TEXT.get(primary_language(language), _WARM_UP_TEXT["en"])

        def run() -> None:
            started = time.perf_counter()
            try:
                first.synthesize(text, language)  # loads the voice; the first inference is slower
            except Exception as exc:  # reported through the future and the log
                log.warning("tts warm-up failed: %s", exc)
                done.set_exception(exc)
                return
            log.info("tts warm-up done in %.2f s (%s, %s)", time.perf_counter() - started, first.name, language)
            done.set_result(None)

        threading.Thread(target=run, name="tts-warm-up", daemon=True).start()
        return done

    def close(self) -> None:
        """Stop what runs beside the bot (festival's process); blocking, a few ms."""
        for engine in self._engines:
            if isinstance(engine, FestivalEngine):
                engine.close()

    def _key(self, text: str, language: str) -> str:
        return phrase_key(text, language, self._voice_id(language))

    def _voice_id(self, language: str) -> str:
        """Part of the cache key: the engines (and voices) that speak ``language``, in order, so
        changing engines or a voice never replays old audio."""
        voice_id = self._voice_ids.get(language)
        if voice_id is None:
            voice_id = self._voice_ids[language] = ",".join(
                f"piper:{e.model_path.name}" if isinstance(e, PiperEngine)
                else f"festival:{e.voice_name(language)}" if isinstance(e, FestivalEngine) else e.name
                for e in self._engines if e.supports(language))
        return voice_id


def _clip(entry: CachedPhrase, text: str, language: str, cached: bool) -> Clip:
    with wave.open(str(entry.path), "rb") as reader:
        rate = reader.getframerate()
        seconds = reader.getnframes() / float(rate)
    return Clip(path=entry.path, seconds=seconds, sample_rate=rate, engine=entry.engine,
                cached=cached, text=text, language=language)
