"""The pure receive path (audio/voice_receive.py): packets, loss, utterances, resampling."""
from __future__ import annotations

import struct
import wave
import io

import nacl.bindings
import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from audio.voice_receive import (FRAME_BYTES, BusyNotice, PacketError, Segmenter, SequenceGap,
                                 after_wake_word, open_packet, rms, to_16k_mono, wav_bytes)

KEY = bytes(range(32))


def seal(payload: bytes, *, mode: str = "aead_xchacha20_poly1305_rtpsize", sequence: int = 7,
         ssrc: int = 1234, extension: bytes | None = None, counter: int = 5, key: bytes = KEY) -> bytes:
    """A packet as a Discord client sends it (written independently of the code under test)."""
    first = 0x90 if extension is not None else 0x80
    header = struct.pack(">BBHII", first, 0x78, sequence, 960 * sequence, ssrc)
    plain = payload
    if extension is not None:
        header += b"\xbe\xde" + struct.pack(">H", len(extension) // 4)
        plain = extension + payload
    nonce = struct.pack(">I", counter)
    if mode == "aead_xchacha20_poly1305_rtpsize":
        sealed = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(plain, header, nonce + bytes(20), key)
    else:
        sealed = AESGCM(key).encrypt(nonce + bytes(8), plain, header)
    return header + sealed + nonce


@pytest.mark.parametrize("mode", ["aead_xchacha20_poly1305_rtpsize", "aead_aes256_gcm_rtpsize"])
def test_packet_opens_in_both_modes_and_drops_the_extension_body(mode):
    frame = open_packet(seal(b"opus-bytes", mode=mode, extension=b"\x10\x00\x00\x00", sequence=9), mode, KEY)
    assert frame is not None
    assert (frame.ssrc, frame.sequence, frame.timestamp, frame.payload) == (1234, 9, 960 * 9, b"opus-bytes")
    assert not frame.is_silence


def test_silence_rtcp_and_bad_keys():
    mode = "aead_xchacha20_poly1305_rtpsize"
    assert open_packet(seal(b"\xf8\xff\xfe"), mode, KEY).is_silence
    rtcp = bytes([0x80, 201]) + bytes(30)
    assert open_packet(rtcp, mode, KEY) is None
    assert open_packet(b"\x00\x01\x00\x46" + bytes(70), mode, KEY) is None  # IP discovery answer
    with pytest.raises(PacketError):
        open_packet(seal(b"opus"), mode, bytes(32))
    tampered = bytearray(seal(b"opus"))
    tampered[3] ^= 1  # the header is authenticated
    with pytest.raises(PacketError):
        open_packet(bytes(tampered), mode, KEY)


def test_sequence_gaps_are_concealed_and_late_packets_dropped():
    gap = SequenceGap(max_conceal=5)
    assert gap.advance(65534) == 0
    assert gap.advance(65535) == 0
    assert gap.advance(1) == 1  # 0 was lost, across the wrap
    assert gap.advance(1) is None  # duplicate
    assert gap.advance(0) is None  # late
    assert gap.advance(4) == 2
    assert gap.advance(100) == 0  # a long gap is not invented
    assert gap.lost == 1 + 2 + 95


def frame(value: int = 1000) -> bytes:
    return np.full(FRAME_BYTES // 2, value, dtype="<i2").tobytes()


def test_segmenter_cuts_on_pauses_per_speaker():
    seg = Segmenter(pause=1.0, end_grace=0.3, max_seconds=30, min_seconds=0.1)
    for i in range(20):  # 0.4 s from each, interleaved
        assert seg.add("bob", frame(), i * 0.02) == []
        assert seg.add("alice", frame(), i * 0.02) == []
    seg.mark_end("alice", 0.4)
    assert seg.next_deadline() == pytest.approx(0.38 + 0.3)
    assert seg.due(0.6) == []
    [alice] = seg.due(0.7)
    assert alice.speaker == "alice" and alice.frames == 20 and alice.seconds == pytest.approx(0.4)
    assert seg.due(1.3) == []
    [bob] = seg.due(1.4)
    assert bob.speaker == "bob" and seg.speaking() == []


def test_segmenter_voice_after_silence_frames_continues_the_utterance():
    seg = Segmenter(pause=1.0, end_grace=0.3, min_seconds=0.1)
    for i in range(10):
        seg.add("bob", frame(), i * 0.02)
    seg.mark_end("bob", 0.2)
    for i in range(10):
        seg.add("bob", frame(), 0.3 + i * 0.02)  # spoke again within the grace
    assert seg.due(0.8) == []  # the grace no longer applies: a full pause is needed
    [u] = seg.due(1.6)
    assert u.frames == 20


def test_segmenter_cap_short_noise_and_leaving():
    seg = Segmenter(pause=1.0, max_seconds=1.0, min_seconds=0.3)
    cut = []
    for i in range(60):
        cut += seg.add("bob", frame(), i * 0.02)
    assert len(cut) == 1 and cut[0].frames == 50  # split at the cap, the rest goes on
    seg.add("carol", frame(), 0.0)  # 20 ms: a click
    assert [u.speaker for u in seg.due(5.0)] == []  # bob's 10 frames and carol's 1 are too short
    for i in range(20):
        seg.add("alice", frame(), i * 0.02)
    [left] = seg.finish("alice")
    assert left.frames == 20 and seg.finish("alice") == []
    seg.add("dan", frame(), 0.0)
    seg.discard("dan")
    assert seg.speaking() == []


def test_resampling_keeps_speech_band_and_removes_aliases():
    t = np.arange(48_000) / 48_000
    def pcm(freq):
        mono = (0.5 * np.sin(2 * np.pi * freq * t) * 32767).astype("<i2")
        return np.repeat(mono[:, None], 2, axis=1).tobytes()
    low = to_16k_mono(pcm(440))
    assert low.dtype == np.float32 and low.size == 16_000
    spectrum = np.abs(np.fft.rfft(low))
    assert np.argmax(spectrum) == 440  # 1 Hz bins over one second
    assert rms(low) == pytest.approx(0.5 / np.sqrt(2), rel=0.02)
    high = to_16k_mono(pcm(12_000))  # above 8 kHz: would alias to 4 kHz when decimated naively
    assert rms(high) < 0.01
    assert to_16k_mono(b"").size == 0


def test_wav_bytes_round_trip():
    samples = np.linspace(-1, 1, 1600, dtype=np.float32)
    with wave.open(io.BytesIO(wav_bytes(samples))) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getnframes()) == (16_000, 1, 1600)
        back = np.frombuffer(wav.readframes(1600), dtype="<i2") / 32767
    assert np.max(np.abs(back - samples)) < 1e-3


def test_wake_word():
    assert after_wake_word("Hey, bot! What time is it?", "hey bot") == "What time is it?"
    assert after_wake_word("hey bot", "hey bot") == ""
    assert after_wake_word("What time is it, hey bot", "hey bot") is None
    assert after_wake_word("hey", "hey bot") is None
    assert after_wake_word("  anything at all ", "") == "anything at all"


def test_busy_is_said_once_per_spell():
    notice = BusyNotice()
    assert notice.busy("g1") and not notice.busy("g1") and notice.busy("g2")
    notice.served("g1")
    assert notice.busy("g1")
