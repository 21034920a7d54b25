"""What the voice server hears from the bot: one voice connection's state and its utterances.

A `VoiceConnection` is one voice websocket session of the bot (a new one per connect, move or
resume): the handshake's results (SSRC, mode, transport key, DAVE group) and counters tests
read.  Each RTP packet routed to it (voice_udp.py) is decrypted, DAVE-decrypted when the
group is up (dave.py) and Opus-decoded; the PCM goes to the server's listeners and, when the
server records, into an `Utterance`: one stretch of speech until discord.py's trailing silence
frames, with its frame timing, loudness and a local transcript for tests.
"""
from __future__ import annotations

import asyncio
import json
import struct
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import discord.opus
import nacl.bindings
import nacl.exceptions
from aiohttp import web

from voice.internals import load_opus  # noqa: F401 - the bot's own loader (public discord.py API), re-exported

from .dave import DaveGroup

if TYPE_CHECKING:
    from .voice import FakeVoiceServer

OPUS_SILENCE = b"\xf8\xff\xfe"  # what discord.py sends (5 times) after speech
FRAME_SECONDS = 0.02
SAMPLE_RATE = 48_000
CHANNELS = 2


@dataclass
class Utterance:
    """One stretch of speech from the bot: voice frames until its trailing silence frames."""

    guild_id: int
    channel_id: int | None
    started: float  # time.monotonic() when the first packet arrived (this process)
    pcm: bytearray = field(default_factory=bytearray)  # 48 kHz stereo s16le
    arrivals: list[float] = field(default_factory=list)
    sequences: list[int] = field(default_factory=list)
    ended: float | None = None
    complete: bool = False  # ended by silence frames (not cut off by a disconnect)

    @property
    def frames(self) -> int:
        """Voice frames received (each 20 ms of audio)."""
        return len(self.arrivals)

    @property
    def seconds(self) -> float:
        return self.frames * FRAME_SECONDS

    @property
    def max_gap(self) -> float:
        """Largest time between two consecutive packets, in seconds."""
        return max((b - a for a, b in zip(self.arrivals, self.arrivals[1:])), default=0.0)

    @property
    def lost(self) -> int:
        """Packets missing from the RTP sequence (wrapping at 2**16)."""
        return sum(((b - a) % 65536) - 1 for a, b in zip(self.sequences, self.sequences[1:]))

    def samples(self):
        """Mono float32 samples in [-1, 1] at 48 kHz."""
        import numpy as np

        stereo = np.frombuffer(bytes(self.pcm), dtype="<i2").astype(np.float32).reshape(-1, CHANNELS)
        return stereo.mean(axis=1) / 32768.0

    def rms(self) -> float:
        """Root mean square level (0 = digital silence, 1 = full scale)."""
        import numpy as np

        samples = self.samples()
        return float(np.sqrt(np.mean(samples ** 2))) if samples.size else 0.0

    def samples_16k(self):
        """Mono float32 at 16 kHz (what Whisper takes): 3-tap average, then every third sample."""
        import numpy as np

        samples = self.samples()
        usable = samples[: samples.size - samples.size % 3]
        return usable.reshape(-1, 3).mean(axis=1).astype(np.float32)

    def transcribe_blocking(self, model: str = "tiny.en", language: str = "en") -> str:
        """What local speech-to-text (faster-whisper, packaged tiny.en; "base", the packaged
        multilingual model, for other languages) hears in `language`; blocks ~0.3 s."""
        from audio.stt import load_whisper_model

        whisper = load_whisper_model(model)
        segments, _info = whisper.transcribe(self.samples_16k(), language=language, beam_size=5,
                                             condition_on_previous_text=False)
        return " ".join(s.text.strip() for s in segments).strip()

    async def transcribe(self, model: str = "tiny.en", language: str = "en") -> str:
        """``transcribe_blocking`` in a worker thread, so the loop keeps receiving packets."""
        return await asyncio.to_thread(self.transcribe_blocking, model, language)


class VoiceConnection:
    """One voice websocket session of the bot in one guild (a new one per connect or move)."""

    def __init__(self, server: "FakeVoiceServer", ws: web.WebSocketResponse):
        self.server = server
        self.ws = ws
        self.guild_id: int | None = None
        self.channel_id: int | None = None
        self.user_id: int | None = None
        self.session_id: str | None = None
        self.ssrc = 0
        self.secret_key: bytes | None = None
        self.mode: str | None = None
        self.client_address: tuple[str, int] | None = None
        self.connected = False  # SESSION_DESCRIPTION sent: the bot may send audio
        self.closed = False
        self.close_code: int | None = None
        self.speaking: list[int] = []  # SPEAKING flags the bot sent, in order
        self.heartbeats = 0
        self.packets = 0
        self.silence_frames = 0
        self.decrypt_errors = 0
        self.identify: dict = {}
        self.dave: DaveGroup | None = None  # DAVE state, when negotiated
        self.dave_protocol_version = 0
        self.resumed_from: VoiceConnection | None = None
        self.resumed_by: VoiceConnection | None = None
        self.interrupted = False  # closed by the server with 4015: may be resumed
        self._seq = 0
        self._decoder: discord.opus.Decoder | None = None
        self._current: Utterance | None = None

    async def send(self, op: int, data: object) -> None:
        if not self.ws.closed:
            self._seq += 1
            await self.ws.send_str(json.dumps({"op": op, "d": data, "seq": self._seq}))

    async def send_binary(self, op: int, payload: bytes) -> None:
        """A binary (DAVE/MLS) message: 2-byte sequence number, opcode, payload."""
        if not self.ws.closed:
            self._seq += 1
            await self.ws.send_bytes(struct.pack(">HB", self._seq & 0xFFFF, op) + payload)

    @property
    def current_frames(self) -> int:
        """Voice frames of the utterance being received now (0 between utterances)."""
        return self._current.frames if self._current is not None else 0

    # -- RTP ------------------------------------------------------------------------------
    def receive_rtp(self, packet: bytes, now: float) -> None:
        if self.secret_key is None:
            self.decrypt_errors += 1
            return
        header_len = 12 + 4 * (packet[0] & 0x0F)
        extension = bool(packet[0] & 0x10)
        if extension:  # rtpsize modes: the 4-byte extension header is associated data
            header_len += 4
        header, ciphertext, nonce = packet[:header_len], packet[header_len:-4], packet[-4:] + bytes(20)
        try:
            payload = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(ciphertext, header, nonce,
                                                                             self.secret_key)
        except nacl.exceptions.CryptoError:
            self.decrypt_errors += 1
            return
        if extension:
            words = struct.unpack_from(">H", packet, header_len - 2)[0]
            payload = payload[4 * words:]
        self.packets += 1
        sequence = struct.unpack_from(">H", packet, 2)[0]
        if payload == OPUS_SILENCE:
            self.silence_frames += 1
            self.end_utterance(complete=True, now=now)
            return
        if self.dave is not None:
            opus = self.dave.receive_frame(payload, now)
            if opus is None:  # counted by the DAVE group; the listener heard nothing
                return
            payload = opus
        if self._decoder is None:
            self._decoder = discord.opus.Decoder()
        pcm = self._decoder.decode(payload, fec=False)
        for listener in self.server.pcm_listeners:  # e.g. the playground page, which plays it
            listener(self.guild_id or 0, pcm)
        if not self.server.record:
            return
        if self._current is None:
            self._current = Utterance(self.guild_id or 0, self.channel_id, started=now)
        self._current.pcm += pcm
        self._current.arrivals.append(now)
        self._current.sequences.append(sequence)
        self.server._changed()  # tests may wait for a point inside an utterance

    def end_utterance(self, *, complete: bool, now: float | None = None) -> None:
        utterance, self._current = self._current, None
        if utterance is None:
            return
        utterance.ended = now if now is not None else time.monotonic()
        utterance.complete = complete
        self.server._utterance_done(utterance)

