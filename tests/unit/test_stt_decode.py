"""Decoding uploads with real ffmpeg: every common container, by content, and every bad input."""

from __future__ import annotations

import math
import os
import subprocess
import tempfile
import wave
from pathlib import Path

import psutil
import pytest

from audio.decode import SAMPLE_RATE, DecodedAudio, decode_audio, looks_like_audio
from audio.errors import AudioDecodeError, AudioError, AudioTooLarge, AudioTooLong, DecodeTimeout, NoSpeech


SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank."

# extension -> ffmpeg output options (source: stereo 48 kHz, so mono/16 kHz conversion is real)
FORMATS = {
    "ogg": ["-c:a", "libopus", "-b:a", "32k"],  # Discord voice messages
    "mp3": ["-c:a", "libmp3lame", "-b:a", "64k"],
    "wav": ["-c:a", "pcm_s16le"],
    "flac": ["-c:a", "flac"],
    "m4a": ["-c:a", "aac", "-b:a", "64k"],
    "webm": ["-c:a", "libopus", "-b:a", "32k"],
    "mp4": None,  # a video with a picture track and a sound track
}


def run(cmd: list[str]) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)


def espeak(text: str, path: Path) -> Path:
    """Real synthetic speech: espeak-ng writes a 22.05 kHz mono WAV."""
    run(["espeak-ng", "-v", "en-us", "-w", str(path), text])
    return path


def wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / w.getframerate()


def encode(src: Path, ext: str, dst_dir: Path, name: str | None = None) -> Path:
    """Encode a WAV into the given container with ffmpeg (stereo 48 kHz)."""
    dst = dst_dir / f"{name or src.stem}.{ext}"
    base = ["ffmpeg", "-y", "-loglevel", "error"]
    if FORMATS.get(ext) is None and ext == "mp4":
        seconds = wav_seconds(src)
        run(base + ["-f", "lavfi", "-i", f"testsrc=d={seconds:.2f}:s=64x48:r=10", "-i", str(src),
                    "-map", "0:v", "-map", "1:a", "-c:v", "mpeg4", "-c:a", "aac", "-ac", "2", "-ar", "48000",
                    "-shortest", str(dst)])
    else:
        run(base + ["-i", str(src), "-ac", "2", "-ar", "48000"] + FORMATS[ext] + [str(dst)])
    return dst


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("speech")
    wav = espeak(SENTENCE, d / "espeak.wav")
    files = {ext: encode(wav, ext, d, name="speech") for ext in FORMATS}
    return {"dir": d, "wav": wav, "seconds": wav_seconds(wav), "files": files}


@pytest.mark.parametrize("ext", list(FORMATS))
@pytest.mark.slow
def test_each_format_decodes_to_16k_mono_with_right_duration(speech, ext):
    data = speech["files"][ext].read_bytes()
    audio = decode_audio(data)
    assert isinstance(audio, DecodedAudio)
    assert audio.sample_rate == SAMPLE_RATE == 16_000
    # mono s16: two bytes per sample, one channel; duration matches the source
    assert len(audio.pcm) % 2 == 0
    assert abs(audio.seconds - speech["seconds"]) < 0.1, (audio.seconds, speech["seconds"])
    # decoded content is the speech, not silence or garbage
    assert -35 < audio.rms_dbfs() < -3
    samples = audio.samples()
    assert samples.dtype.name == "float32" and len(samples) == len(audio.pcm) // 2
    assert float(abs(samples).max()) <= 1.0


def test_mono_output_keeps_the_signal_of_a_one_sided_stereo_file(speech, tmp_path):
    # speech only on the left channel: a downmix must still carry it (not pick the silent side)
    left_only = tmp_path / "left.ogg"
    run(["ffmpeg", "-y", "-loglevel", "error", "-i", str(speech["wav"]), "-af", "pan=stereo|c0=c0|c1=0*c0",
         "-c:a", "libopus", str(left_only)])
    audio = decode_audio(left_only.read_bytes())
    assert audio.rms_dbfs() > -45
    assert abs(audio.seconds - speech["seconds"]) < 0.1


def test_format_is_detected_from_content_not_name_or_type(speech, tmp_path):
    # An OGG voice message saved as ".mp3" with a text content type still decodes:
    # decode_audio never sees a name, ffmpeg probes the bytes.
    misnamed = tmp_path / "voice-message.mp3"
    misnamed.write_bytes(speech["files"]["ogg"].read_bytes())
    audio = decode_audio(misnamed.read_bytes())
    assert abs(audio.seconds - speech["seconds"]) < 0.1
    assert decode_audio(speech["files"]["m4a"].read_bytes()).seconds == pytest.approx(speech["seconds"], abs=0.1)


def test_looks_like_audio():
    assert looks_like_audio("voice-message.ogg", "audio/ogg")
    assert looks_like_audio(None, "audio/ogg; codecs=opus")
    assert looks_like_audio("clip", "video/mp4")
    assert looks_like_audio("Recording.M4A", None)
    assert looks_like_audio("song.flac", "application/octet-stream")
    for ext in ("mp3", "wav", "webm", "mp4", "opus"):
        assert looks_like_audio(f"x.{ext}", "")
    assert not looks_like_audio("photo.png", "image/png")
    assert not looks_like_audio("notes.txt", "text/plain")
    assert not looks_like_audio("archive.tar.gz", None)
    assert not looks_like_audio(None, None)
    assert not looks_like_audio("noextension", "")


# ------------------------------------------------------------------ bad inputs


def test_empty_input():
    with pytest.raises(AudioDecodeError) as e:
        decode_audio(b"")
    assert "empty" in e.value.user_message


def test_random_bytes_are_not_audio():
    junk = bytes((i * 7919 + 13) % 251 for i in range(20_000))
    with pytest.raises(AudioDecodeError) as e:
        decode_audio(junk)
    assert e.value.user_message


def test_corrupted_audio_file(speech):
    data = bytearray(speech["files"]["mp3"].read_bytes())
    data[:2000] = b"\x00" * 2000  # headers and first frames destroyed
    corrupt_ogg = speech["files"]["ogg"].read_bytes()[:60]  # truncated in the header
    with pytest.raises(AudioDecodeError):
        decode_audio(corrupt_ogg)
    # a partly damaged mp3 either decodes what survived or fails cleanly: never anything else
    try:
        audio = decode_audio(bytes(data))
    except AudioError as exc:
        assert exc.user_message
    else:
        assert 0 < audio.seconds <= speech["seconds"] + 0.1


def test_text_file_is_not_audio():
    with pytest.raises(AudioDecodeError) as e:
        decode_audio(b"Hello, this is a plain text file, not a recording.\n" * 50)
    assert "audio" in e.value.user_message.lower()


def test_png_image_is_not_audio(tmp_path):
    png = tmp_path / "img.png"
    run(["ffmpeg", "-y", "-loglevel", "error", "-f", "lavfi", "-i", "color=red:s=32x32", "-frames:v", "1", str(png)])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(AudioDecodeError) as e:
        decode_audio(png.read_bytes())
    assert e.value.user_message


def test_video_without_sound_track(tmp_path):
    mp4 = tmp_path / "silent-video.mp4"
    run(["ffmpeg", "-y", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=d=2:s=64x48", "-c:v", "mpeg4", str(mp4)])
    with pytest.raises(AudioDecodeError) as e:
        decode_audio(mp4.read_bytes())
    assert "sound track" in e.value.user_message


@pytest.mark.parametrize("kind", ["silence", "near-silence"])
def test_silent_audio_is_no_speech(tmp_path, kind):
    src = "anullsrc=r=48000:cl=mono" if kind == "silence" else "anoisesrc=r=48000:a=0.0005:seed=3"
    ogg = tmp_path / "quiet.ogg"
    run(["ffmpeg", "-y", "-loglevel", "error", "-f", "lavfi", "-i", src, "-t", "3", "-c:a", "libopus", str(ogg)])
    with pytest.raises(NoSpeech) as e:
        decode_audio(ogg.read_bytes())
    assert e.value.user_message == "I couldn't hear any speech in that recording."
    assert decode_audio(ogg.read_bytes(), reject_silence=False).seconds == pytest.approx(3, abs=0.1)


def test_too_long_is_measured_on_decoded_audio(speech):
    with pytest.raises(AudioTooLong) as e:
        decode_audio(speech["files"]["ogg"].read_bytes(), max_seconds=2)
    assert "2 seconds" in e.value.user_message
    # just under the limit is fine
    decode_audio(speech["files"]["ogg"].read_bytes(), max_seconds=math.ceil(speech["seconds"]))


def test_too_long_default_limit_is_ten_minutes(tmp_path):
    # 11 minutes of tone in a 5 MB file: under the size limit, rejected by duration
    wav = tmp_path / "long.wav"
    run(["ffmpeg", "-y", "-loglevel", "error", "-f", "lavfi", "-i", "sine=f=300:r=8000",
         "-t", "660", "-c:a", "pcm_u8", str(wav)])
    with pytest.raises(AudioTooLong) as e:
        decode_audio(wav.read_bytes())
    assert "10 minutes" in e.value.user_message


def test_too_big(speech):
    data = speech["files"]["wav"].read_bytes()
    with pytest.raises(AudioTooLarge) as e:
        decode_audio(data, max_bytes=len(data) - 1)
    assert "too big" in e.value.user_message
    decode_audio(data, max_bytes=len(data))


def _ffmpeg_children() -> list[psutil.Process]:
    out = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.name() == "ffmpeg" and child.status() != psutil.STATUS_ZOMBIE:
                out.append(child)
        except psutil.NoSuchProcess:
            pass
    return out


def test_decode_timeout_kills_ffmpeg_and_cleans_up(tmp_path):
    flac = tmp_path / "minute.flac"
    run(["ffmpeg", "-y", "-loglevel", "error", "-f", "lavfi", "-i", "anoisesrc=r=48000:a=0.3:seed=2",
         "-t", "60", "-ac", "2", str(flac)])
    before = set(os.listdir(tempfile.gettempdir()))
    with pytest.raises(DecodeTimeout) as e:
        decode_audio(flac.read_bytes(), timeout=0.005)
    assert isinstance(e.value, AudioError) and "too long to decode" in e.value.user_message
    assert _ffmpeg_children() == []
    leftovers = {n for n in set(os.listdir(tempfile.gettempdir())) - before if n.startswith("audio-decode-")}
    assert leftovers == set()
    # the same file decodes with a sane timeout
    assert decode_audio(flac.read_bytes(), timeout=30).seconds == pytest.approx(60, abs=0.1)
