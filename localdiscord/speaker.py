"""Members speaking in the bot's voice channel, as Discord's voice server relays them.

A ``FakeSpeaker`` is one member (a user of the fake Discord who is in the bot's voice
channel, so the server already added a DAVE session for them to the bot's group, see
dave.py). ``say`` sends, in real time, what a Discord client sends while that member
talks: op 5 SPEAKING on the bot's voice websocket (naming the member's SSRC), then RTP
packets of 20 ms Opus frames, each DAVE-encrypted by the member's own session and then
transport-encrypted with the connection's key, to the address the bot announced in IP
discovery, and five silence frames at the end. Packet loss and a late op 5 can be
injected. ``leave`` sends op 13 CLIENT_DISCONNECT and takes the member out of the channel
(their session leaves the group: a new epoch); ``echo_bot`` replays the bot's own packets
back to it under the bot's user id, which the bot must never take for a member.

Packet layout: ../shared/docs/voice-receive.md.
"""
from __future__ import annotations

import asyncio
import random
import struct
import subprocess
import time
from dataclasses import dataclass

import discord.opus
import nacl.bindings

from .state import Guild, User, snowflake
from .voice import FakeVoiceServer, VoiceConnection
from .voice_connection import load_opus

SPEAKING, CLIENT_DISCONNECT = 5, 13
OPUS_SILENCE = b"\xf8\xff\xfe"
FRAME_BYTES = 3840  # 20 ms of 48 kHz stereo s16le
SAMPLES_PER_FRAME = 960
PAYLOAD_TYPE = 0x78
# A one-word header extension (as Discord clients send): exercises the rtpsize layout.
EXTENSION = b"\xbe\xde\x00\x01"
EXTENSION_BODY = b"\x10\x80\x00\x00"


def pcm_of_file(path: str) -> bytes:
    """Any audio file as 48 kHz stereo s16le PCM (ffmpeg)."""
    return subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "s16le", "-ac", "2", "-ar", "48000", "-"],
                          check=True, capture_output=True).stdout


def pcm_of_speech(text: str, voice: str = "en-us", speed: int = 150) -> bytes:
    """``text`` spoken by espeak-ng, as 48 kHz stereo s16le PCM."""
    wav = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text],
                         check=True, capture_output=True).stdout
    return subprocess.run(["ffmpeg", "-v", "error", "-i", "-", "-f", "s16le", "-ac", "2", "-ar", "48000", "-"],
                          input=wav, check=True, capture_output=True).stdout


def encode_opus(pcm: bytes) -> list[bytes]:
    """20 ms Opus frames of ``pcm`` (the last one padded with silence)."""
    load_opus()
    encoder = discord.opus.Encoder()
    frames = []
    for start in range(0, len(pcm), FRAME_BYTES):
        frames.append(encoder.encode(pcm[start:start + FRAME_BYTES].ljust(FRAME_BYTES, b"\0"), SAMPLES_PER_FRAME))
    return frames


def seal(conn: VoiceConnection, payload: bytes, sequence: int, timestamp: int, ssrc: int, counter: int) -> bytes:
    """An RTP packet as a client sends it, transport-encrypted (aead_xchacha20_poly1305_rtpsize)."""
    assert conn.secret_key is not None
    header = struct.pack(">BBHII", 0x90, PAYLOAD_TYPE, sequence & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc) + EXTENSION
    nonce = struct.pack(">I", counter & 0xFFFFFFFF)
    sealed = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
        EXTENSION_BODY + payload, header, nonce + bytes(20), conn.secret_key)
    return header + sealed + nonce


@dataclass
class Spoken:
    """What one ``say`` sent."""

    frames: int  # voice frames in the recording
    sent: int  # voice packets actually sent (the rest were "lost")
    last_packet: float  # time.monotonic() when the last voice packet was sent
    seconds: float


class FakeSpeaker:
    """One member talking in the bot's voice channel of ``guild``."""

    def __init__(self, voice: FakeVoiceServer, guild: Guild, user: User, *, seed: int = 0):
        self.voice = voice
        self.guild = guild
        self.user = user
        self.ssrc = snowflake() & 0x7FFFFFFF
        self._sequence = random.Random(seed).randrange(65536)
        self._timestamp = random.Random(seed + 1).randrange(2**32)
        self._counter = 0
        self._random = random.Random(seed + 2)
        self.op5_sent_to: set[int] = set()  # ids of connections told this member's SSRC

    def connection(self) -> VoiceConnection:
        conn = self.voice.connection(self.guild)
        assert conn is not None and conn.connected and not conn.closed, "the bot is not connected"
        assert conn.client_address is not None
        return conn

    def in_group(self) -> bool:
        """The member's DAVE session is in the bot's current group (or the call is plaintext)."""
        conn = self.voice.connection(self.guild)
        if conn is None or conn.closed or not conn.connected:
            return False
        return conn.dave is None or (conn.dave.ready and self.user.id in conn.dave.member_ids())

    async def announce(self) -> None:
        """Op 5 SPEAKING for this member's SSRC on the bot's current voice websocket."""
        conn = self.connection()
        await conn.send(SPEAKING, {"user_id": str(self.user.id), "ssrc": self.ssrc, "speaking": 1})
        self.op5_sent_to.add(id(conn))

    async def say(self, pcm: bytes, *, loss: float = 0.0, op5_after: int = 0, silence_frames: int = 5,
                  stop_after: int | None = None) -> Spoken:
        """Speak ``pcm`` (48 kHz stereo s16le) in real time. ``loss``: share of voice packets
        not sent; ``op5_after``: voice packets sent before op 5 names the SSRC; ``stop_after``:
        frames sent before stopping mid-sentence (no silence frames: cut off, e.g. to leave)."""
        frames = await asyncio.to_thread(encode_opus, pcm)
        if stop_after is not None:
            frames, silence_frames = frames[:stop_after], 0
        started = time.monotonic()
        sent = 0
        last = started
        for index, opus in enumerate(frames):
            if index == op5_after:
                await self.announce()
            if self._random.random() >= loss:
                self._send(opus)
                sent += 1
                last = time.monotonic()
            else:
                self._advance()
            await self._pace(started, index + 1)
        if op5_after >= len(frames):
            await self.announce()
        for index in range(silence_frames):
            self._send(OPUS_SILENCE, dave=False)
            await self._pace(started, len(frames) + index + 1)
        return Spoken(len(frames), sent, last, len(frames) * 0.02)

    async def leave(self) -> None:
        """Op 13 to the bot, and out of the voice channel (the server drops the member's session)."""
        conn = self.voice.connection(self.guild)
        if conn is not None and not conn.closed:
            await conn.send(CLIENT_DISCONNECT, {"user_id": str(self.user.id)})
        await self.voice.fake.set_voice_state(self.guild, self.user, None)

    def _send(self, payload: bytes, dave: bool = True) -> None:
        conn = self.connection()
        if dave and conn.dave is not None:
            listener = conn.dave.listeners.get(self.user.id)
            if listener is None:  # not (yet, or no longer) in the group: Discord would not relay it
                self._advance()
                return
            payload = listener.session.encrypt_opus(payload)
        self._counter += 1
        packet = seal(conn, payload, self._sequence, self._timestamp, self.ssrc, self._counter)
        self._advance()
        assert conn.client_address is not None
        self.voice.send_udp(packet, conn.client_address)

    def _advance(self) -> None:
        self._sequence = (self._sequence + 1) & 0xFFFF
        self._timestamp = (self._timestamp + SAMPLES_PER_FRAME) & 0xFFFFFFFF

    @staticmethod
    async def _pace(started: float, frames_done: int) -> None:
        """Real time: the next packet leaves 20 ms after the previous one."""
        await asyncio.sleep(max(0.0, started + frames_done * 0.02 - time.monotonic()))


def echo_bot(voice: FakeVoiceServer, guild: Guild) -> list[int]:
    """Send every packet the bot sends straight back to it, with op 5 naming the bot's own
    user id for its SSRC (a broken server, or the bot's echo): the bot must not hear itself.
    Returns a list that counts the packets echoed (its length)."""
    echoed: list[int] = []
    announced: set[int] = set()

    def tap(conn: VoiceConnection, data: bytes) -> None:
        if conn.guild_id != guild.id or conn.closed or conn.client_address is None:
            return
        if id(conn) not in announced:
            announced.add(id(conn))
            asyncio.get_running_loop().create_task(
                conn.send(SPEAKING, {"user_id": str(conn.user_id), "ssrc": conn.ssrc, "speaking": 1}))
        voice.send_udp(data, conn.client_address)
        echoed.append(1)

    voice.rtp_taps.append(tap)
    return echoed
