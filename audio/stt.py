"""Speech-to-text engines behind one interface, with ordered fallback.

A bot should keep answering when one engine can't (no network for Google, a
missing model for Whisper), so engines are tried in the configured order and
every fallback is logged on the "audio.stt" logger. Engines that cannot serve
the requested language are skipped. The language is a code ("ru") or ``auto``:
Whisper then detects it (``audio.spoken_language``), and what it writes without
hearing speech is dropped (``audio.speech_guard``). Everything here blocks (model
inference, HTTP): run it in a worker thread.
"""

from __future__ import annotations

import functools
import logging
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from typing import Callable, Iterable, Sequence

import numpy as np

from audio.decode import DecodedAudio
from audio.errors import AudioError, EngineUnavailable, NoSpeech, TranscriptionFailed
from audio.speech_guard import MIN_SPEECH_SECONDS, speech_in
from audio.spoken_language import AUTO, CONFIDENT, OVERRIDE, RECHECK, fits_script
from audio.whisper_models import (  # noqa: F401 - int8_copy, _model_cache: part of this module's interface
    _model_cache, english_only, int8_copy, load_whisper_model, resolve_whisper_model, whisper_languages,
)
from errors import Phrase

__all__ = [
    "SpeechEngine",
    "Heard",
    "WhisperEngine",
    "GoogleEngine",
    "SphinxEngine",
    "ENGINE_NAMES",
    "build_engines",
    "recognise",
    "transcribe_with_fallback",
    "split_on_silence",
    "resolve_whisper_model",
    "load_whisper_model",
    "base_language",
    "AUTO",
]

log = logging.getLogger("audio.stt")


def base_language(language: str) -> str:
    """Primary language subtag: "en-US" -> "en" (what Whisper expects); "auto" stays "auto"."""
    return language.replace("_", "-").split("-", 1)[0].strip().lower()


@dataclass(frozen=True)
class Heard:
    """What an engine heard: the text; the language it was heard in (None: unknown); whether that
    language is known surely (a confident detection, or sure words in the expected language); and
    the mean log-probability of Whisper's words (how sure it was of them; None: no words)."""

    text: str
    language: str | None = None
    sure: bool = False
    logprob: float | None = None


class SpeechEngine(ABC):
    """One way of turning 16 kHz mono speech into text."""

    name: str = "engine"

    @abstractmethod
    def supports(self, language: str) -> bool:
        """Whether this engine can transcribe ``language`` (e.g. "en", "de", "auto")."""

    @abstractmethod
    def transcribe(self, audio: DecodedAudio, language: str) -> str:
        """Return the transcript ("" if no speech); raise on failure."""

    def hear(self, audio: DecodedAudio, language: str, usual: str | None = None) -> Heard:
        """``transcribe`` with the language it used.  ``usual``: the scope's usual language, which an
        engine that can't detect hears for ``auto`` (English when there is none)."""
        lang = base_language(language)
        if lang == AUTO:
            lang = usual or "en"
        return Heard(self.transcribe(audio, lang), lang)

    def warm_up(self) -> None:
        """Load whatever is slow to load, so the first user doesn't wait for it."""


# --------------------------------------------------------------------------- whisper


class WhisperEngine(SpeechEngine):
    """Local faster-whisper (int8 on CPU); the default, works offline.

    ``model`` hears every language and detects it; ``english_model``, when set, hears English
    instead (bench/stt.py --languages measures both).  A clip is heard in the given language, or
    for ``auto`` in the scope's usual one; when the words come out unsure (a wrong language, or
    not speech) the multilingual model detects the language and a confident other one is heard
    instead (``audio.spoken_language``).  For ``auto`` with no usual language, detection comes
    first.  What Whisper writes without hearing speech is dropped (``audio.speech_guard``)."""

    name = "whisper"

    # Measured with bench/stt.py: beam search 5 beat greedy on held-out speech
    # at similar speed; the VAD drops silence (fewer hallucinations on pauses);
    # not conditioning on previous text avoids repetition loops in long audio;
    # three temperatures, not Whisper's six: unclear audio cost up to 6x real time
    # with six, half that with three, the same WER on real speech in en and ru.
    DEFAULT_OPTIONS = {
        "beam_size": 5,
        "vad_filter": True,
        "condition_on_previous_text": False,
        "temperature": (0.0, 0.4, 0.8),
    }

    def __init__(self, model: str = "tiny.en", *, english_model: str | None = None, cpu_threads: int = 2,
                 num_workers: int = 1, cache_dir: str | os.PathLike | None = None, **options):
        self.model = model
        self.english_model = english_model if english_model and english_model != model else None
        self.cpu_threads = cpu_threads
        self.num_workers = num_workers
        self.cache_dir = cache_dir
        self.options = {**self.DEFAULT_OPTIONS, **options}
        self._loaded: dict[str, object] = {}  # model setting -> the loaded WhisperModel

    def _english_only(self) -> bool:
        loaded = self._loaded.get(self.model)
        if loaded is not None:
            return not loaded.model.is_multilingual
        return english_only(self.model)

    def supports(self, language: str) -> bool:
        lang = base_language(language)
        if lang in (AUTO, "en"):
            return True  # an English-only model hears "auto" as English
        return not self._english_only() and lang in whisper_languages()

    def _model(self, name: str | None = None):
        name = name or self.model
        loaded = load_whisper_model(name, cpu_threads=self.cpu_threads, num_workers=self.num_workers,
                                    cache_dir=self.cache_dir)
        self._loaded[name] = loaded
        return loaded

    def _model_for(self, language: str):
        return self._model(self.english_model if language == "en" and self.english_model else None)

    def warm_up(self) -> None:
        self._model()

    def transcribe(self, audio: DecodedAudio, language: str) -> str:
        return self.hear(audio, language).text

    def hear(self, audio: DecodedAudio, language: str, usual: str | None = None) -> Heard:
        lang = base_language(language)
        samples = audio.samples()
        multilingual = not self._english_only()
        expected = "en" if not multilingual else usual if lang == AUTO else lang
        first = None
        if expected is not None:
            first = self._pass(samples, expected)
            if first.sure or first.logprob is None or not multilingual:
                return first
        # Detection: the multilingual model's own pass, whose words are decoded only if they are used.
        segments, info = self._model().transcribe(samples, language=None, **self.options)
        detected, probability = info.language, info.language_probability
        in_detected = functools.partial(self._judged, segments, info.duration_after_vad, detected)
        if first is None:  # nothing known of the scope yet
            log.debug("detected %s (%.2f)", detected, probability)
            return replace(self._hear_detected(samples, detected, in_detected), sure=probability >= CONFIDENT)
        log.debug("unsure in %s (%.2f): detected %s (%.2f)", expected, first.logprob, detected, probability)
        if detected == expected or probability < OVERRIDE:
            if detected == expected == "en" and self.english_model:
                return _surer(first, in_detected())  # the English model was unsure: the other one's words too
            return first
        log.info("heard %s, not %s: the words were unsure (%.2f) and the detection sure (%.2f)", detected,
                 expected, first.logprob, probability)
        return replace(self._hear_detected(samples, detected, in_detected), sure=True)

    def _hear_detected(self, samples, detected: str, in_detected: Callable[[], Heard]) -> Heard:
        """Heard in the detected language: the English model's pass for English (the multilingual
        model's words too when it is unsure), else the multilingual model's own words."""
        if detected != "en" or not self.english_model:
            return in_detected()
        heard = self._pass(samples, detected)
        return heard if heard.sure or heard.logprob is None else _surer(heard, in_detected())

    def _pass(self, samples, language: str) -> Heard:
        segments, info = self._model_for(language).transcribe(samples, language=language, **self.options)
        return self._judged(segments, info.duration_after_vad, language)

    @staticmethod
    def _judged(segments, speech_seconds: float, language: str) -> Heard:
        text, verdicts, logprob = speech_in(segments, speech_seconds)
        for verdict in verdicts:
            if not verdict.kept:
                log.info("dropped what whisper wrote without hearing speech: %r (%s)", verdict.text, verdict.reason)
        sure = logprob is not None and logprob >= RECHECK and fits_script(text, language)
        return Heard(text, language, sure, logprob)


def _surer(first: Heard, other: Heard, margin: float = 0.2) -> Heard:
    """``first``, unless it has no words and ``other`` has, or ``other``'s are clearly surer."""
    if other.text and (not first.text or (other.logprob or -99.0) > (first.logprob or -99.0) + margin):
        return other
    return first


# --------------------------------------------------------------------------- google


def split_on_silence(audio: DecodedAudio, max_seconds: float = 50.0, search_seconds: float = 15.0) -> list[DecodedAudio]:
    """Split audio into chunks of at most ``max_seconds``, cutting at quiet moments.

    Each cut goes in the middle of the longest run of the quietest 30 ms frames
    within the last ``search_seconds`` of the allowed span, so words are rarely
    cut in half.
    """
    rate = audio.sample_rate
    samples = np.frombuffer(audio.pcm, dtype="<i2")
    max_len = int(max_seconds * rate)
    if len(samples) <= max_len:
        return [audio]
    frame = int(0.03 * rate)
    search = min(int(search_seconds * rate), max_len - frame)
    chunks: list[DecodedAudio] = []
    start = 0
    while len(samples) - start > max_len:
        lo, hi = start + max_len - search, start + max_len
        n_frames = (hi - lo) // frame
        window = samples[lo : lo + n_frames * frame].astype(np.float64).reshape(n_frames, frame)
        energy = np.mean(window * window, axis=1)
        run_start, run_len = _longest_run(energy <= energy.min() * 4 + 1.0)
        cut = lo + (run_start * frame) + (run_len * frame) // 2  # middle of the longest pause
        chunks.append(DecodedAudio(samples[start:cut].tobytes(), rate))
        start = cut
    chunks.append(DecodedAudio(samples[start:].tobytes(), rate))
    return chunks


def _longest_run(mask: np.ndarray) -> tuple[int, int]:
    """(start, length) of the longest run of True in ``mask`` (latest wins ties)."""
    best = (0, 0)
    start = None
    for i, quiet in enumerate(list(mask) + [False]):
        if quiet and start is None:
            start = i
        elif not quiet and start is not None:
            if i - start >= best[1]:
                best = (start, i - start)
            start = None
    return best


class GoogleEngine(SpeechEngine):
    """SpeechRecognition's free Google Web Speech endpoint (the original bot's engine).

    Needs the network; the endpoint takes about a minute per request, so long
    audio goes in chunks. A socket timeout keeps a dead network from hanging us.
    """

    name = "google"

    def __init__(
        self,
        *,
        timeout: float = 15.0,
        chunk_seconds: float = 50.0,
        key: str | None = None,
        endpoint: str | None = None,
    ):
        self.timeout = timeout
        self.chunk_seconds = chunk_seconds
        self.key = key
        self.endpoint = endpoint  # None: SpeechRecognition's default Google endpoint

    def supports(self, language: str) -> bool:
        return bool(language.strip())

    @staticmethod
    def _language_tag(language: str) -> str:
        return "en-US" if language.strip().lower() == "en" else language.strip()

    def transcribe(self, audio: DecodedAudio, language: str) -> str:
        import speech_recognition as sr

        recognizer = sr.Recognizer()
        recognizer.operation_timeout = self.timeout
        extra = {"endpoint": self.endpoint} if self.endpoint else {}
        parts: list[str] = []
        for chunk in split_on_silence(audio, self.chunk_seconds):
            data = sr.AudioData(chunk.pcm, chunk.sample_rate, 2)
            try:
                text = recognizer.recognize_google(data, key=self.key, language=self._language_tag(language), **extra)
            except sr.UnknownValueError:
                continue  # nothing intelligible in this chunk
            except sr.RequestError as exc:
                raise EngineUnavailable(f"google request failed: {exc}") from exc
            except OSError as exc:  # socket timeouts while reading the reply
                raise EngineUnavailable(f"google request failed: {type(exc).__name__}: {exc}") from exc
            if isinstance(text, str) and text.strip():
                parts.append(text.strip())
        return " ".join(parts)


# --------------------------------------------------------------------------- sphinx


class SphinxEngine(SpeechEngine):
    """PocketSphinx via SpeechRecognition: offline but inaccurate; only if installed."""

    name = "sphinx"

    def supports(self, language: str) -> bool:
        return base_language(language) == "en"

    def transcribe(self, audio: DecodedAudio, language: str) -> str:
        import speech_recognition as sr

        data = sr.AudioData(audio.pcm, audio.sample_rate, 2)
        try:
            return sr.Recognizer().recognize_sphinx(data, language="en-US")
        except sr.UnknownValueError:
            return ""
        except sr.RequestError as exc:  # e.g. pocketsphinx not installed
            raise EngineUnavailable(f"sphinx unavailable: {exc}") from exc


# --------------------------------------------------------------------------- selection

ENGINE_NAMES = ("whisper", "google", "sphinx")


def build_engines(
    names: Iterable[str | SpeechEngine],
    *,
    whisper_model: str = "tiny.en",
    whisper_english_model: str | None = None,
    google_timeout: float = 15.0,
    cpu_threads: int = 2,
    model_cache_dir: str | os.PathLike | None = None,
) -> list[SpeechEngine]:
    """Engines from config names, in order (ready-made engine objects pass through)."""
    makers = {
        "whisper": lambda: WhisperEngine(whisper_model, english_model=whisper_english_model, cpu_threads=cpu_threads,
                                         cache_dir=model_cache_dir),
        "google": lambda: GoogleEngine(timeout=google_timeout),
        "sphinx": SphinxEngine,
    }
    engines: list[SpeechEngine] = []
    for item in names:
        if isinstance(item, SpeechEngine):
            engines.append(item)
            continue
        make = makers.get(str(item).strip().lower())
        if make is None:
            raise ValueError(f"unknown speech engine {item!r}; choose from {', '.join(ENGINE_NAMES)}")
        engines.append(make())
    if not engines:
        raise ValueError("at least one speech engine is required")
    return engines


def transcribe_with_fallback(engines: Sequence[SpeechEngine], audio: DecodedAudio, language: str) -> tuple[str, str]:
    """``recognise`` without the language heard: (text, engine name)."""
    heard, engine = recognise(engines, audio, language)
    return heard.text, engine


def recognise(engines: Sequence[SpeechEngine], audio: DecodedAudio, language: str,
              usual: str | None = None) -> tuple[Heard, str]:
    """Try each engine that supports ``language`` (a code, or ``auto``) in order; return what
    it heard and its name.  ``usual``: the scope's usual language, the prior for ``auto``.

    Raises NoSpeech when the engine that answered heard nothing, and
    TranscriptionFailed when no engine could serve the language or all failed.
    """
    usable = []
    for engine in engines:
        if engine.supports(language):
            usable.append(engine)
        else:
            log.info("STT engine %s skipped: it does not support language %r", engine.name, language)
    if not usable:
        raise TranscriptionFailed(
            f"no configured engine supports language {language!r}",
            user_message=Phrase("Sorry, I can't transcribe speech in language '{language}' with my current setup.",
                                language=language),
        )
    failures = []
    for i, engine in enumerate(usable):
        try:
            heard = engine.hear(audio, language, usual)
        except NoSpeech:
            raise
        except Exception as exc:  # any engine failure means: try the next one
            nxt = usable[i + 1].name if i + 1 < len(usable) else None
            reason = exc.args[0] if isinstance(exc, AudioError) and exc.args else f"{type(exc).__name__}: {exc}"
            if nxt:
                log.warning("STT engine %s failed (%s); falling back to %s", engine.name, reason, nxt)
            else:
                log.error("STT engine %s failed (%s); no engines left", engine.name, reason)
            failures.append(f"{engine.name}: {reason}")
            continue
        if i > 0:
            log.info("transcribed with fallback engine %s", engine.name)
        if not heard.text.strip():
            raise NoSpeech(f"{engine.name} returned no text")
        return Heard(heard.text.strip(), heard.language, heard.sure, heard.logprob), engine.name
    raise TranscriptionFailed("all speech engines failed: " + "; ".join(failures))
