"""Audio as a voice connection plays it, and giving memory back after heavy audio work.

Pure audio helpers (no discord import): the speech queue in `voice/playback.py`
feeds their PCM to Discord, the transcription service trims memory after jobs.
"""
from __future__ import annotations

import ctypes
import math
import subprocess
import wave
from pathlib import Path
from typing import Callable

from audio.containers import describe_content, ffmpeg_input_args, sniff_container

DECODE_TIMEOUT = 30.0
PLAYBACK_RATE = 48_000  # Discord voice: 48 kHz, stereo, 16-bit


def pcm_for_discord(path: Path) -> bytes:
    """An audio file as Discord plays it: 48 kHz stereo 16-bit PCM (blocking).

    The synthesiser's 16-bit WAVs are resampled in memory (a few ms); anything else
    goes through ffmpeg, whose start-up alone costs ~0.15 s here."""
    try:
        return _wav_to_discord_pcm(path)
    except (wave.Error, EOFError, ValueError):
        return _ffmpeg_to_discord_pcm(path)


def _wav_to_discord_pcm(path: Path) -> bytes:
    """Band-limited (FFT) resampling of a 16-bit PCM WAV to 48 kHz stereo."""
    import numpy as np

    with wave.open(str(path), "rb") as reader:
        if reader.getsampwidth() != 2 or reader.getnchannels() not in (1, 2):
            raise ValueError("not 16-bit mono/stereo PCM")
        rate, channels = reader.getframerate(), reader.getnchannels()
        samples = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")
    if samples.size == 0:
        return b""
    mono = samples.reshape(-1, channels).mean(axis=1) if channels == 2 else samples.astype(np.float64)
    if rate != PLAYBACK_RATE:
        # Pad with silence to down * 2**k samples so both FFT sizes factor into small primes
        # (a prime-length FFT is ~10x slower), then cut the padding off again.
        common = math.gcd(rate, PLAYBACK_RATE)
        up, down = PLAYBACK_RATE // common, rate // common
        blocks = 1 << max(0, math.ceil(math.log2(math.ceil(mono.size / down))))
        count = round(mono.size * up / down)
        padded = np.fft.irfft(np.fft.rfft(mono, down * blocks), up * blocks) * (up / down)
        mono = padded[:count]
    pcm = np.clip(np.rint(mono), -32768, 32767).astype("<i2")
    return np.repeat(pcm, 2).tobytes()  # the same sample on both channels


def _ffmpeg_to_discord_pcm(path: Path) -> bytes:
    """Any accepted audio container (by content) through ffmpeg, which may open nothing but ``path``."""
    data = path.read_bytes()
    container = sniff_container(data)
    if container is None:
        raise RuntimeError(f"{path.name} is not an audio container I play ({describe_content(data)})")
    source = str(path.resolve())
    try:
        result = subprocess.run(
            ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", *ffmpeg_input_args(container, source),
             "-f", "s16le", "-acodec", "pcm_s16le", "-ar", "48000", "-ac", "2", "pipe:1"],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=DECODE_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeError(f"ffmpeg could not run: {exc}") from exc
    if result.returncode != 0:
        raise RuntimeError(f"ffmpeg could not decode {path.name}: {result.stderr.decode(errors='replace')[-300:]}")
    return result.stdout


def _load_malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim  # glibc only
    except (OSError, AttributeError):
        return None


_malloc_trim = _load_malloc_trim()


_M_MMAP_THRESHOLD = -3  # glibc mallopt parameter


def keep_large_buffers_out_of_heap(threshold: int = 64 * 1024) -> bool:
    """Serve allocations over ``threshold`` bytes with their own mapping, unmapped when freed.

    glibc raises its mmap threshold (up to 32 MB) each time a large block is freed; after
    that the speech models' per-call buffers (tens of MB for each reply or transcription)
    come from the heap, where they fragment and stay resident.  A fixed threshold hands them
    back at once: measured with bench/memory.py, the bot after speaking 343 -> 269 MB, its
    peak with both speech models 478 -> 436 MB (a 1 MiB threshold: 447 MB).  The price is
    page faults: whisper takes ~0.25 s more CPU per 11 s clip (4.3 -> 5.1 s for three),
    piper the same as before.  Process-wide; call once at start-up.  Returns False where it
    can't be set (not glibc)."""
    try:
        return bool(ctypes.CDLL(None).mallopt(_M_MMAP_THRESHOLD, threshold))
    except (OSError, AttributeError):
        return False


def release_freed_memory() -> None:
    """Hand heap memory freed after synthesis back to the OS (blocking, a few ms).

    glibc keeps what the voice model's inference freed (~60 MB after a few piper
    sentences, more with several worker threads); trimming keeps the bot's resident
    memory near what the loaded models need."""
    if _malloc_trim is not None:
        _malloc_trim(0)
