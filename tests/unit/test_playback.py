"""Audio as Discord plays it: 48 kHz stereo 16-bit PCM from WAVs and other files."""
from __future__ import annotations

import math
import subprocess
import wave

import numpy as np

from audio.playback import PLAYBACK_RATE, pcm_for_discord, release_freed_memory


def tone_wav(path, rate=22050, seconds=1.0, freq=440.0):
    t = np.arange(int(rate * seconds)) / rate
    samples = (0.5 * 32767 * np.sin(2 * math.pi * freq * t)).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return path


def dominant_frequency(pcm: bytes) -> float:
    left = np.frombuffer(pcm, dtype="<i2")[::2].astype(float)
    spectrum = np.abs(np.fft.rfft(left))
    return float(np.argmax(spectrum) * PLAYBACK_RATE / left.size)


def test_wav_is_resampled_to_48k_stereo_keeping_pitch_and_length(tmp_path):
    pcm = pcm_for_discord(tone_wav(tmp_path / "tone.wav"))
    assert len(pcm) == PLAYBACK_RATE * 2 * 2  # one second, 2 channels, 2 bytes
    stereo = np.frombuffer(pcm, dtype="<i2").reshape(-1, 2)
    assert (stereo[:, 0] == stereo[:, 1]).all()
    assert abs(dominant_frequency(pcm) - 440) < 2


def test_other_formats_go_through_ffmpeg(tmp_path):
    wav = tone_wav(tmp_path / "tone.wav", rate=16000, seconds=0.5, freq=1000)
    mp3 = tmp_path / "tone.mp3"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(wav), str(mp3)], check=True)
    pcm = pcm_for_discord(mp3)
    assert abs(len(pcm) / 4 / PLAYBACK_RATE - 0.5) < 0.1  # mp3 adds a little padding
    assert abs(dominant_frequency(pcm) - 1000) < 5


def test_release_freed_memory_is_harmless():
    release_freed_memory()
