"""festival with its Russian voice (Debian's festvox-ru, msu_ru_nsh_clunits): the offline Russian engine.

Loading festival and the voice costs ~0.3-0.5 s and ~180 MB (~270 MB once it has spoken a while:
it reads the voice's units as it needs them); after that a sentence takes ~0.03 s
(~0.01 real time). So one festival interpreter is kept running (``festival --pipe``) and every
request is one line of Scheme on its stdin, answered on its stdout as::

    WAV <token>\\n  RIFF....(a mono 16-bit WAV, its length in its header)  \\nEND <token>\\n
    FAIL <token>\\n                                   (festival raised an error; the process lives on)

The WAV is at the voice's own rate (16 kHz): ``audio.playback`` resamples it for Discord in a few
ms, where festival's own resampler (``utt.wave.resample``) took 0.11 s of each 0.145 s sentence.

``<token>`` is random per request and the marker lines are put together by festival at run time,
so nothing festival echoes (it prints the failing form, text included, when a Scheme error
occurs) can pass for an answer. The text becomes a Scheme string literal only after every
character but letters, digits, spaces and plain punctuation is dropped: no quote or
backslash is left to end the literal, no newline to end the request. Every read has a
deadline; on a timeout, a broken answer or a dead process the process is killed and the next
request starts a new one (a request whose process died under it is retried once).

Before festival sees Russian text, ``ru-normalizr`` spells out numbers, dates, abbreviations and
Latin words ("25" -> "двадцать пять", "Discord" -> "дискорд"): the voice reads Russian words
(Latin ones letter by letter, digits in a flat voice). Blocking: call from worker threads
(``audio.synthesis`` does); one lock serialises them.
"""

from __future__ import annotations

import functools
import glob
import io
import logging
import os
import re
import secrets
import select
import shutil
import subprocess
import threading
import time
import unicodedata
import wave
from collections import deque

from audio.speech_text import chunk_text

log = logging.getLogger("audio.tts")

VOICES = {"ru": "msu_ru_nsh_clunits"}  # language -> festival voice (festvox-ru)
HEAP_CELLS = 1_200_000  # Lisp heap: the default 10 M cells cost ~300 MB; loading the voice needs 0.7-1 M
START_TIMEOUT = 15.0  # seconds to start festival and load the voice (~0.5 s here)
REQUEST_TIMEOUT = 10.0  # seconds for one piece of text (300 characters take ~0.1 s)
MAX_PIECE_CHARS = 300  # text per request; longer text is cut at sentences, clauses, words
MAX_TEXT_CHARS = 5_000  # more than this is refused (the synthesiser caps replies at TTS_MAX_CHARS)
IDLE_SECONDS = 600.0  # a process unused this long is stopped (it holds ~270 MB); the next reply starts one
_MAX_WAV_BYTES = 64 * 1024 * 1024
_MAX_NOISE_BYTES = 1024 * 1024  # what festival may print (warnings, error echoes) before an answer
_VOICE_ROOTS = ("/usr/share/festival/voices", "/usr/local/share/festival/voices", "/usr/lib/festival/voices")

# What the voice reads: Russian and ASCII letters, digits, plain punctuation. Its letter-to-sound rules
# fail the whole request on anything else (measured: é, ü, і, ß, α, ², en and em dashes among them).
_SPEAKABLE = frozenset("абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ"
                       "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,!?;:'-")
_PAUSES = str.maketrans({"\u2013": ", ", "\u2014": ", ", "\n": ". "})

# Defined once per process: speak TEXT, answer with markers built from TOKEN (see the module docstring).
_PRELUDE = r"""
(define (bot_say token text)
  (unwind-protect
    (let ((utt (utt.synth (eval (list 'Utterance 'Text text)))))  ; Utterance quotes its arguments
      (format t "\nWAV %%s\n" token)
      (utt.save.wave utt "-" 'riff)
      (format t "\nEND %%s\n" token)
      (fflush nil))
    (begin (format t "\nFAIL %%s\n" token) (fflush nil))))
(unwind-protect
  (begin (voice_%s) (format t "\nREADY %%s\n" "%s"))
  (format t "\nNO-VOICE %%s\n" "%s"))
(fflush nil)
"""


class FestivalError(Exception):
    """festival could not speak this text (the engine turns it into ``EngineFailed``)."""


class _Died(FestivalError):
    """The process ended, or its pipes broke, during a request."""


@functools.lru_cache(maxsize=8)
def voice_installed(voice: str) -> bool:
    """Whether the festival program and ``voice`` are installed (files only: nothing is started)."""
    if shutil.which("festival") is None:
        return False
    return any(glob.glob(os.path.join(root, "*", voice)) for root in _VOICE_ROOTS)


def speakable(text: str) -> str:
    """``text`` as festival's voice reads it: words, single spaces and plain punctuation; a run of
    punctuation standing alone joins the word before it (its letter-to-sound rules fail on it)."""
    kept = "".join(map(_speakable_char, text.translate(_PAUSES)))
    words: list[str] = []
    for token in kept.split():
        if any(ch.isalnum() for ch in token):
            words.append(token)
        elif words:
            words[-1] += token[0]
    return " ".join(words)


def _speakable_char(ch: str) -> str:
    if ch in _SPEAKABLE:
        return ch
    base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
    return base if base and all(c in _SPEAKABLE for c in base) else " "  # é -> e, ﬁ -> fi


def scheme_string(text: str) -> str:
    """``text`` as a Scheme string literal festival can't read as anything but one string: only
    speakable characters are left (no quote or backslash), escaped all the same."""
    return '"' + speakable(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


_normalizer_lock = threading.Lock()


@functools.lru_cache(maxsize=1)
def _russian_normalizer():
    # Loaded on first Russian speech: importing it costs ~0.2 s and ~35 MB (pymorphy3's dictionaries).
    from ru_normalizr import NormalizeOptions, Normalizer

    return Normalizer(NormalizeOptions(mode="tts"))


def spell_out_russian(text: str) -> str:
    """Russian text with numbers, dates, abbreviations and Latin words written as spoken words."""
    with _normalizer_lock:  # its caches are not documented as thread-safe
        return _russian_normalizer().normalize(text)


class FestivalProcess:
    """One running festival interpreter with ``voice`` loaded. Not thread-safe: the engine locks."""

    def __init__(self, voice: str, *, start_timeout: float = START_TIMEOUT, heap: int = HEAP_CELLS):
        if not re.fullmatch(r"[a-z0-9_]+", voice):
            raise ValueError(f"not a festival voice name: {voice!r}")
        self.voice = voice
        self._buffer = bytearray()
        self._stderr: deque[str] = deque(maxlen=20)
        started = time.perf_counter()
        try:
            self._proc = subprocess.Popen(
                ["festival", "--pipe", "--heap", str(heap)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, cwd="/", start_new_session=True)  # a Ctrl-C to the bot is not its
        except OSError as exc:
            raise FestivalError(f"festival could not start: {exc}") from exc
        threading.Thread(target=self._drain_stderr, name="festival-stderr", daemon=True).start()
        token = secrets.token_hex(8)
        try:
            self._send(_PRELUDE % (voice, token, token))
            if self._expect((f"READY {token}", f"NO-VOICE {token}"), time.monotonic() + start_timeout) \
                    != f"READY {token}":
                raise FestivalError(f"festival could not load the voice {voice}: {self.errors() or 'no reason given'}")
        except (FestivalError, TimeoutError):
            self.close()
            raise
        log.info("festival started with voice %s in %.2f s (pid %d)", voice, time.perf_counter() - started,
                 self._proc.pid)

    @property
    def pid(self) -> int:
        return self._proc.pid

    def alive(self) -> bool:
        return self._proc.poll() is None

    def say(self, text: str, timeout: float = REQUEST_TIMEOUT) -> bytes:
        """One WAV for ``text`` (already safe to quote: see ``scheme_string``)."""
        token = secrets.token_hex(8)
        deadline = time.monotonic() + timeout
        self._stderr.clear()  # errors() then tells about this request
        self._send(f'(bot_say "{token}" {scheme_string(text)})\n')
        if self._expect((f"WAV {token}", f"FAIL {token}"), deadline) != f"WAV {token}":
            raise FestivalError(f"festival could not say it: {self.errors() or 'no reason given'}")
        header = self._read(8, deadline)
        size = int.from_bytes(header[4:], "little")
        if header[:4] != b"RIFF" or not 36 <= size <= _MAX_WAV_BYTES:
            raise _Died(f"festival answered with something other than a WAV: {bytes(header)!r}")
        wav = header + self._read(size, deadline)
        self._expect(f"END {token}", deadline)
        return _checked(wav)

    def errors(self) -> str:
        """What festival last wrote to stderr (its Scheme errors)."""
        return " | ".join(self._stderr)

    def close(self, *, kill: bool = False) -> None:
        """End the process: EOF on stdin, then a kill if it lingers (at once with ``kill``)."""
        if kill:
            self._proc.kill()
        try:
            if self._proc.stdin is not None:
                self._proc.stdin.close()
        except OSError:
            pass
        try:
            self._proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()

    # -- the pipes --------------------------------------------------------------------------------
    def _send(self, request: str) -> None:
        try:
            assert self._proc.stdin is not None
            self._proc.stdin.write(request.encode("utf-8"))
            self._proc.stdin.flush()
        except (OSError, ValueError) as exc:  # BrokenPipeError; ValueError: stdin closed
            raise _Died(f"festival is gone: {exc}") from exc

    def _fill(self, deadline: float) -> None:
        """Read what festival has written (at least one byte) before ``deadline``."""
        assert self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            raise TimeoutError("festival did not answer in time")
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            raise _Died(f"festival exited (code {self._proc.poll()}): {self.errors()}")
        self._buffer += chunk

    def _read(self, size: int, deadline: float) -> bytes:
        while len(self._buffer) < size:
            self._fill(deadline)
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def _expect(self, wanted: str | tuple[str, ...], deadline: float) -> str:
        """Skip lines until one of ``wanted``; return it."""
        wanted = (wanted,) if isinstance(wanted, str) else wanted
        skipped = 0
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > _MAX_NOISE_BYTES:
                    raise _Died("festival wrote too much without answering")
                self._fill(deadline)
                continue
            line = self._buffer[:end].decode("utf-8", "replace").strip()
            del self._buffer[:end + 1]
            if line in wanted:
                return line
            skipped += end + 1
            if skipped > _MAX_NOISE_BYTES:
                raise _Died("festival wrote too much without answering")

    def _drain_stderr(self) -> None:
        stream = self._proc.stderr
        assert stream is not None
        try:
            for raw in stream:
                line = raw.decode("utf-8", "replace").strip()
                if line:
                    self._stderr.append(line[:300])
        except (OSError, ValueError):
            pass
        finally:
            stream.close()


def _checked(wav: bytes) -> bytes:
    try:
        with wave.open(io.BytesIO(wav), "rb") as reader:
            shape = (reader.getframerate(), reader.getnchannels(), reader.getsampwidth())
            frames = reader.getnframes()
    except (wave.Error, EOFError) as exc:
        raise _Died(f"festival's WAV is unreadable: {exc}") from exc
    if shape[1:] != (1, 2) or shape[0] < 8000:
        raise _Died(f"festival's WAV is {shape}, not mono 16-bit")
    if frames == 0:
        raise FestivalError("festival made no audio")
    return wav


class FestivalVoice:
    """The warm process for one voice: started on first use, restarted after it dies or hangs,
    stopped after ``idle_seconds`` unused."""

    def __init__(self, voice: str, *, timeout: float = REQUEST_TIMEOUT, start_timeout: float = START_TIMEOUT,
                 idle_seconds: float = IDLE_SECONDS):
        self.voice = voice
        self.timeout = timeout
        self.start_timeout = start_timeout
        self.idle_seconds = idle_seconds
        self._lock = threading.Lock()
        self._process: FestivalProcess | None = None
        self._idle_timer: threading.Timer | None = None
        self._last_used = 0.0
        self.starts = 0  # processes started so far (tests and logs)

    def load(self) -> None:
        """Start the process now instead of on first use."""
        with self._lock:
            self._running()
            self._used()

    def say(self, text: str) -> bytes:
        """One WAV for ``text``; raises ``FestivalError``. Long text is spoken piece by piece."""
        if len(text) > MAX_TEXT_CHARS:
            raise FestivalError(f"text too long for one reply ({len(text)} characters)")
        pieces = [piece for piece in map(speakable, _pieces(text)) if piece]
        if not pieces:
            raise FestivalError("nothing festival can say in this text")
        with self._lock:
            try:
                return _join_wavs([self._say_one(piece) for piece in pieces])
            finally:
                self._used()

    def running(self) -> bool:
        with self._lock:
            return self._process is not None and self._process.alive()

    def close(self) -> None:
        with self._lock:
            self._stop()

    def _used(self) -> None:
        """Restart the idle countdown (caller holds the lock)."""
        self._last_used = time.monotonic()
        if self._idle_timer is None and self._process is not None and self.idle_seconds > 0:
            self._start_idle_timer(self.idle_seconds)

    def _start_idle_timer(self, seconds: float) -> None:
        timer = threading.Timer(seconds, lambda: self._stop_if_idle(timer))
        timer.daemon = True  # never keeps the bot from exiting
        self._idle_timer = timer
        timer.start()

    def _stop_if_idle(self, timer: threading.Timer) -> None:
        with self._lock:
            if self._idle_timer is not timer:  # cancelled, or replaced, while it waited for the lock
                return
            self._idle_timer = None
            left = self.idle_seconds - (time.monotonic() - self._last_used)
            if left > 0:  # used meanwhile: wait for the rest
                self._start_idle_timer(left)
            elif self._process is not None:
                log.info("festival (voice %s) unused for %.0f s: stopping it", self.voice, self.idle_seconds)
                self._stop()

    def _say_one(self, piece: str) -> bytes:
        for attempt in (1, 2):
            fresh = self._process is None or not self._process.alive()
            process = self._running()
            try:
                return process.say(piece, self.timeout)
            except _Died as exc:
                self._stop()
                if fresh or attempt == 2:  # a new process died on this text: don't feed it again
                    raise FestivalError(str(exc)) from exc
                log.warning("festival died during a request (%s); starting it again", exc)
            except TimeoutError as exc:
                self._stop(kill=True)  # stuck mid-answer: its pipe can't be trusted any more
                raise FestivalError(f"festival took over {self.timeout:g} s") from exc
        raise AssertionError("unreachable")

    def _running(self) -> FestivalProcess:
        if self._process is not None and not self._process.alive():
            log.warning("festival (pid %d) had exited: %s", self._process.pid, self._process.errors() or "no message")
            self._stop()
        if self._process is None:
            try:
                self._process = FestivalProcess(self.voice, start_timeout=self.start_timeout)
            except TimeoutError as exc:
                raise FestivalError(f"festival did not start in {self.start_timeout:g} s") from exc
            self.starts += 1
        return self._process

    def _stop(self, *, kill: bool = False) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        process, self._process = self._process, None
        if process is not None:
            process.close(kill=kill)


def _pieces(text: str) -> list[str]:
    pieces = []
    for piece in chunk_text(text, MAX_PIECE_CHARS) or [text]:
        pieces += [piece[i:i + MAX_PIECE_CHARS] for i in range(0, len(piece), MAX_PIECE_CHARS)]  # a huge "word"
    return pieces


def _join_wavs(wavs: list[bytes]) -> bytes:
    if len(wavs) == 1:
        return wavs[0]
    frames = []
    for wav in wavs:
        with wave.open(io.BytesIO(wav), "rb") as reader:
            rate = reader.getframerate()  # the voice's: the same for every piece
            frames.append(reader.readframes(reader.getnframes()))
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(b"".join(frames))
    return out.getvalue()
