"""The pure parts of hearing people in a voice channel: packets in, utterances out.

Discord sends each speaker's voice as RTP packets of 20 ms Opus frames, transport
encrypted (and DAVE end-to-end encrypted inside). This module holds what needs no
Discord and no network, so it can be tested on its own:

* ``open_packet``: RTP header parsing and transport decryption (the ``*_rtpsize`` AEAD
  modes: header + extension header are the associated data, the last 4 bytes the nonce);
* ``SequenceGap``: how many frames were lost before a packet (for packet-loss concealment),
  and which packets are late duplicates;
* ``Segmenter``: cuts each speaker's decoded audio into utterances (a pause ends one, a
  length cap splits one);
* ``to_16k_mono`` / ``wav_bytes``: 48 kHz stereo PCM to what speech-to-text takes;
* ``after_wake_word`` and ``BusyNotice``: when to answer, and saying "busy" once per spell.

Layouts and measured pitfalls: ../shared/docs/voice-receive.md. No discord import here.
"""
from __future__ import annotations

import io
import re
import struct
import wave
from dataclasses import dataclass, field
from typing import Hashable

import numpy as np

RTP_HEADER = 12
OPUS_SILENCE = b"\xf8\xff\xfe"  # a client's "I stopped talking" frame: never DAVE-encrypted
SAMPLE_RATE = 48_000
CHANNELS = 2
FRAME_SAMPLES = 960  # 20 ms at 48 kHz
FRAME_BYTES = FRAME_SAMPLES * CHANNELS * 2
MODES = ("aead_xchacha20_poly1305_rtpsize", "aead_aes256_gcm_rtpsize")


class PacketError(ValueError):
    """A datagram that claims to be voice but can't be opened (wrong key, truncated)."""


@dataclass(frozen=True)
class RtpFrame:
    """One received voice packet after transport decryption."""

    ssrc: int
    sequence: int
    timestamp: int
    payload: bytes  # an Opus frame, DAVE-encrypted when the call is end-to-end encrypted

    @property
    def is_silence(self) -> bool:
        return self.payload == OPUS_SILENCE


def is_voice_packet(data: bytes) -> bool:
    """RTP version 2 and not RTCP (payload types 200-204 share the second byte)."""
    return len(data) >= RTP_HEADER + 4 and data[0] >> 6 == 2 and not 200 <= data[1] <= 204


def open_packet(data: bytes, mode: str, key: bytes) -> RtpFrame | None:
    """Transport-decrypt one datagram; None when it is not a voice packet (RTCP, IP
    discovery). Raises PacketError when it fails to authenticate."""
    if not is_voice_packet(data):
        return None
    header_len = RTP_HEADER + 4 * (data[0] & 0x0F)  # CSRCs
    extension = bool(data[0] & 0x10)
    if extension:  # rtpsize: the 4-byte extension header is authenticated, its body encrypted
        header_len += 4
    if len(data) < header_len + 4 + 16:
        raise PacketError("truncated packet")
    header, ciphertext, counter = data[:header_len], data[header_len:-4], data[-4:]
    if mode == "aead_xchacha20_poly1305_rtpsize":
        import nacl.bindings
        import nacl.exceptions
        try:
            plain = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
                ciphertext, header, counter + bytes(20), key)
        except nacl.exceptions.CryptoError as exc:
            raise PacketError("transport decryption failed") from exc
    elif mode == "aead_aes256_gcm_rtpsize":
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        try:
            plain = AESGCM(key).decrypt(counter + bytes(8), ciphertext, header)
        except InvalidTag as exc:
            raise PacketError("transport decryption failed") from exc
    else:
        raise PacketError(f"unsupported mode {mode}")
    if extension:
        words = struct.unpack_from(">H", data, header_len - 2)[0]
        plain = plain[4 * words:]
    sequence, timestamp, ssrc = struct.unpack_from(">HII", data, 2)
    return RtpFrame(ssrc, sequence, timestamp, bytes(plain))


class SequenceGap:
    """Per SSRC: frames missing before each packet, so the decoder can conceal them.

    ``advance(seq)`` returns how many frames to conceal (at most ``max_conceal``: a longer
    gap is a pause or a reconnect, not loss worth inventing audio for), or None for a late
    or duplicate packet, which is dropped (its place was concealed already)."""

    def __init__(self, max_conceal: int = 10):
        self.max_conceal = max_conceal
        self.last: int | None = None
        self.lost = 0

    def advance(self, sequence: int) -> int | None:
        if self.last is None:
            self.last = sequence
            return 0
        delta = (sequence - self.last) % 65536
        if delta == 0 or delta > 32768:  # duplicate, or older than the last one
            return None
        self.last = sequence
        missing = delta - 1
        self.lost += missing
        return missing if missing <= self.max_conceal else 0


@dataclass
class Utterance:
    """What one speaker said between pauses: 48 kHz stereo s16le PCM."""

    speaker: Hashable
    started: float
    last_voice: float  # when its last voice packet arrived
    pcm: bytearray = field(default_factory=bytearray)
    frames: int = 0
    ended_by_client: bool = False  # the client sent its silence frames

    @property
    def seconds(self) -> float:
        return len(self.pcm) / (SAMPLE_RATE * CHANNELS * 2)


class Segmenter:
    """Cuts each speaker's audio into utterances. Not thread-safe: one owner calls it.

    An utterance ends when its speaker has sent no voice for ``pause`` seconds, sooner
    (``end_grace``) after the client said it stopped (silence frames), and is split at
    ``max_seconds``. Utterances shorter than ``min_seconds`` (a click, a cough) are dropped.
    Times are passed in, so tests need no clock."""

    def __init__(self, pause: float = 1.0, end_grace: float = 0.3, max_seconds: float = 30.0,
                 min_seconds: float = 0.3):
        self.pause = pause
        self.end_grace = min(end_grace, pause)
        self.max_bytes = int(max_seconds * SAMPLE_RATE) * CHANNELS * 2
        self.min_seconds = min_seconds
        self._open: dict[Hashable, Utterance] = {}

    def add(self, speaker: Hashable, pcm: bytes, now: float) -> list[Utterance]:
        """Voice from ``speaker``; returns an utterance cut at the length cap, if any."""
        current = self._open.get(speaker)
        if current is None:
            current = self._open[speaker] = Utterance(speaker, started=now, last_voice=now)
        current.pcm += pcm
        current.frames += 1
        current.last_voice = now
        current.ended_by_client = False
        if len(current.pcm) >= self.max_bytes:
            del self._open[speaker]
            return self._keep(current)
        return []

    def mark_end(self, speaker: Hashable, now: float) -> None:
        """The client sent silence frames: it stopped talking (it may start again)."""
        current = self._open.get(speaker)
        if current is not None:
            current.ended_by_client = True

    def due(self, now: float) -> list[Utterance]:
        """Utterances whose speaker has paused long enough."""
        done = [u for u in self._open.values()
                if now - u.last_voice >= (self.end_grace if u.ended_by_client else self.pause)]
        for utterance in done:
            del self._open[utterance.speaker]
        return [u for u in done if u.seconds >= self.min_seconds]

    def next_deadline(self) -> float | None:
        """The earliest time an open utterance may end (None: nobody is talking)."""
        return min((u.last_voice + (self.end_grace if u.ended_by_client else self.pause)
                    for u in self._open.values()), default=None)

    def finish(self, speaker: Hashable) -> list[Utterance]:
        """The speaker left: what they said so far is an utterance."""
        current = self._open.pop(speaker, None)
        return self._keep(current) if current is not None else []

    def discard(self, speaker: Hashable) -> None:
        """Forget what the speaker said so far (they opted out, listening stopped)."""
        self._open.pop(speaker, None)

    def speaking(self) -> list[Hashable]:
        return list(self._open)

    def _keep(self, utterance: Utterance) -> list[Utterance]:
        return [utterance] if utterance.seconds >= self.min_seconds else []


def to_16k_mono(pcm: bytes) -> np.ndarray:
    """48 kHz stereo s16le to 16 kHz mono float32 in [-1, 1] (what whisper takes):
    downmix, then a polyphase low-pass resampler (no aliasing, unlike taking every third
    sample)."""
    from scipy.signal import resample_poly

    usable = len(pcm) - len(pcm) % (CHANNELS * 2)
    stereo = np.frombuffer(pcm[:usable], dtype="<i2").reshape(-1, CHANNELS).astype(np.float32)
    mono = stereo.mean(axis=1) / 32768.0
    if mono.size == 0:
        return mono
    return resample_poly(mono, 1, 3).astype(np.float32)


def wav_bytes(samples: np.ndarray, rate: int = 16_000) -> bytes:
    """Mono float samples as a 16-bit WAV file (what the transcription service decodes)."""
    clipped = np.clip(samples, -1.0, 1.0)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((clipped * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if samples.size else 0.0


_WORD = re.compile(r"[\w']+")


def after_wake_word(text: str, wake_word: str) -> str | None:
    """What was said after the wake word, or None when ``text`` does not start with it;
    the whole text when there is no wake word. Case and punctuation are ignored
    ("Hey, bot! what time is it" with wake word "hey bot" gives "what time is it")."""
    text = text.strip()
    wanted = [w.lower() for w in _WORD.findall(wake_word)]
    if not wanted:
        return text
    matches = list(_WORD.finditer(text))
    if len(matches) < len(wanted) or [m.group().lower() for m in matches[:len(wanted)]] != wanted:
        return None
    rest = text[matches[len(wanted) - 1].end():]
    return rest.lstrip(" ,.!?;:-").strip()


class BusyNotice:
    """Say "I'm busy" once per busy spell of a scope, not once per utterance dropped."""

    def __init__(self) -> None:
        self._busy: set[Hashable] = set()

    def busy(self, scope: Hashable) -> bool:
        """The scope's utterance was refused; True when this is news worth saying."""
        if scope in self._busy:
            return False
        self._busy.add(scope)
        return True

    def served(self, scope: Hashable) -> None:
        """A transcription of the scope went through: the spell is over."""
        self._busy.discard(scope)
