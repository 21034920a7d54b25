"""Decode uploaded audio/video bytes to 16 kHz mono PCM with ffmpeg.

Uploads are untrusted: the file name and declared content type can be wrong,
the data can be corrupt, huge, endless, not audio at all, or crafted to make
ffmpeg open other files or URLs (playlists, concat lists, nested protocols).
The container is judged from the content (``audio.containers``): only audio
containers are accepted, and ffmpeg gets that one demuxer and no protocol but
the input itself.  Each decode runs in its own private temporary folder (mode
0700, removed afterwards) that is also ffmpeg's working directory, so even a
relative name has nothing to find.  Size, duration, output and wall time are
bounded, and every failure is an ``AudioError`` subclass with a message a user
can act on.  Blocking (runs ffmpeg); call it from a worker thread, not the event loop.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

import numpy as np

from audio.containers import ACCEPTED_FORMATS, Container, describe_content, ffmpeg_input_args, sniff_container
from audio.errors import AudioDecodeError, AudioTooLarge, AudioTooLong, DecodeTimeout, NoSpeech, UnacceptedFormat
from errors import Phrase

__all__ = [
    "SAMPLE_RATE",
    "DecodedAudio",
    "decode_audio",
    "check_upload",
    "accepted_container",
    "looks_like_audio",
    "AUDIO_EXTENSIONS",
]

SAMPLE_RATE = 16_000
SILENCE_DBFS = -55.0  # quieter than this overall is treated as "no speech"

AUDIO_EXTENSIONS = frozenset({
    "ogg", "oga", "opus", "mp3", "wav", "wave", "flac", "m4a", "aac", "webm", "mp4",
    "m4v", "mov", "mkv", "mka", "wma", "aiff", "aif", "amr", "3gp", "caf", "weba",
})


def looks_like_audio(filename: str | None, content_type: str | None) -> bool:
    """Whether an attachment should take the audio path (cheap pre-download check).

    Discord voice messages arrive as ``audio/ogg``; other uploads may only have
    a telling extension. This is a hint only: ``decode_audio`` judges content.
    """
    if content_type:
        major = content_type.split(";", 1)[0].strip().lower().split("/", 1)[0]
        if major in ("audio", "video"):
            return True
    if filename and "." in filename:
        return filename.rsplit(".", 1)[1].strip().lower() in AUDIO_EXTENSIONS
    return False


@dataclass(frozen=True)
class DecodedAudio:
    """16 kHz mono signed 16-bit little-endian PCM."""

    pcm: bytes
    sample_rate: int = SAMPLE_RATE

    @property
    def seconds(self) -> float:
        return len(self.pcm) / (2 * self.sample_rate)

    def samples(self) -> np.ndarray:
        """Samples as float32 in [-1, 1] (what Whisper consumes)."""
        return np.frombuffer(self.pcm, dtype="<i2").astype(np.float32) / 32768.0

    def rms_dbfs(self) -> float:
        """Overall loudness in dB relative to full scale (-inf for digital silence)."""
        if not self.pcm:
            return -math.inf
        x = np.frombuffer(self.pcm, dtype="<i2").astype(np.float64)
        rms = math.sqrt(float(np.mean(x * x)))
        return 20 * math.log10(rms / 32768.0) if rms > 0 else -math.inf


def _ffmpeg() -> str:
    path = shutil.which("ffmpeg")
    if not path:
        raise AudioDecodeError(
            "ffmpeg is not installed", user_message=Phrase("Audio decoding isn't available on this bot right now.")
        )
    return path


def check_upload(data: bytes, max_bytes: int) -> None:
    """Reject empty or oversized uploads before spending any work on them."""
    if not data:
        raise AudioDecodeError("empty input", user_message=Phrase("That file is empty."))
    if len(data) > max_bytes:
        raise AudioTooLarge(
            f"{len(data)} bytes > {max_bytes}",
            user_message=too_big(max_bytes),
        )


def accepted_container(data: bytes) -> Container:
    """The audio container of ``data``, or UnacceptedFormat saying what it looks like instead."""
    container = sniff_container(data)
    if container is None:
        what = describe_content(data)
        raise UnacceptedFormat(
            f"refused upload: {what}, first bytes {data[:16]!r}",
            user_message=Phrase("Not an audio format I accept: that looks like {what}. Send {formats}.", what=what,
                                formats=ACCEPTED_FORMATS),
        )
    return container


def decode_audio(
    data: bytes,
    *,
    max_bytes: int = 25_000_000,
    max_seconds: float = 600.0,
    timeout: float = 60.0,
    reject_silence: bool = True,
) -> DecodedAudio:
    """Decode an accepted audio container to 16 kHz mono PCM, judged by content.

    Raises AudioTooLarge, AudioTooLong, DecodeTimeout, UnacceptedFormat (not an
    audio container), AudioDecodeError (empty, corrupt, no sound track) or
    NoSpeech (silent, when ``reject_silence``).
    """
    check_upload(data, max_bytes)
    container = accepted_container(data)
    with tempfile.TemporaryDirectory(prefix="audio-decode-") as private:  # mkdtemp: mode 0700
        if container.needs_seeking:
            # A real file, not a pipe: MP4/M4A often keep their index at the end and
            # need seeking, which ffmpeg cannot do on stdin.
            path = os.path.join(private, "upload")
            with open(path, "xb") as f:
                f.write(data)
            pcm = _run_ffmpeg(ffmpeg_input_args(container, path), None, private,
                              max_seconds=max_seconds, timeout=timeout)
        else:
            pcm = _run_ffmpeg(ffmpeg_input_args(container, "pipe:0"), data, private,
                              max_seconds=max_seconds, timeout=timeout)

    audio = DecodedAudio(pcm)
    if audio.seconds > max_seconds:
        raise AudioTooLong(
            f"longer than {max_seconds} s",
            user_message=Phrase("That recording is too long: the limit is {limit}.", limit=_fmt_duration(max_seconds)),
        )
    if audio.seconds < 0.05:
        raise AudioDecodeError("no audio samples decoded", user_message=Phrase("That file has no audio in it."))
    if reject_silence and audio.rms_dbfs() < SILENCE_DBFS:
        raise NoSpeech(f"silent audio ({audio.rms_dbfs():.1f} dBFS)")
    return audio


def _run_ffmpeg(input_args: list[str], stdin: bytes | None, workdir: str, *,
                max_seconds: float, timeout: float) -> bytes:
    # Decode a little past the limit so "too long" is measured on real samples,
    # not on container metadata (which can lie), while bounding output size.
    limit = f"{max_seconds + 1:.3f}"
    cmd = [
        _ffmpeg(), "-nostdin", "-hide_banner", "-loglevel", "error",
        *input_args, "-map", "0:a:0", "-vn", "-sn", "-dn",
        "-t", limit, "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "s16le", "-acodec", "pcm_s16le", "pipe:1",
    ]
    try:
        proc = subprocess.run(cmd, input=stdin, stdin=subprocess.DEVNULL if stdin is None else None,
                              capture_output=True, timeout=timeout, check=False, cwd=workdir)
    except subprocess.TimeoutExpired as exc:  # run() has already killed ffmpeg
        raise DecodeTimeout(f"ffmpeg exceeded {timeout} s") from exc
    if proc.returncode != 0:
        detail = proc.stderr.decode("utf-8", "replace").strip()[-500:]
        if "matches no streams" in detail:
            raise AudioDecodeError(
                f"no audio stream: {detail}", user_message=Phrase("That file has no sound track I can transcribe.")
            )
        raise AudioDecodeError(f"ffmpeg failed ({proc.returncode}): {detail}")
    return proc.stdout


def too_big(max_bytes: int) -> Phrase:
    return Phrase("That file is too big: the limit is {limit:g} MB.", limit=max_bytes / 1_000_000)


def _fmt_duration(seconds: float) -> Phrase:
    if seconds >= 60 and seconds % 60 == 0:
        return Phrase("1 minute") if seconds == 60 else Phrase("{minutes:.0f} minutes", minutes=seconds // 60)
    return Phrase("{seconds:g} seconds", seconds=seconds)
