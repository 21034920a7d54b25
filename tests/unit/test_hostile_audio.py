"""Crafted uploads must make ffmpeg read nothing but the upload: no network, no other file.

Each hostile file names a real recording on disk (or a loopback listener this test runs);
the decoder must refuse it without opening what it names.  Real ffmpeg, real files.
"""

from __future__ import annotations

import base64
import os
import socket
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

import audio.decode as decode_module
from audio import containers
from audio.containers import ffmpeg_input_args, sniff_container
from audio.decode import decode_audio
from audio.errors import AudioDecodeError, UnacceptedFormat
from audio.playback import pcm_for_discord
from audio.tts import EngineFailed, mp3_to_wav
from tests.unit.test_stt_decode import FORMATS, encode, espeak

SECRET_WORDS = "swordfish banana"


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """tempfile's folder is tmp_path: decode folders are created (and must be removed) here."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


@pytest.fixture
def secret(private_tmp) -> Path:
    """A real recording the uploads try to make the bot read: beside the decode folders."""
    wav = espeak(f"the secret password is {SECRET_WORDS}", private_tmp / "secret.wav")
    assert decode_audio(wav.read_bytes()).seconds > 1  # it *is* readable audio
    return wav


@pytest.fixture
def listener():
    """A loopback TCP listener; `connections()` says how many clients reached it."""
    server = socket.create_server(("127.0.0.1", 0))
    server.setblocking(False)

    def connections() -> int:
        count = 0
        while True:
            try:
                conn, _addr = server.accept()  # the kernel completes handshakes without accept()
            except BlockingIOError:
                return count
            conn.close()
            count += 1

    yield server.getsockname()[1], connections
    server.close()


def hls(*segments: str) -> bytes:
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:10", "#EXT-X-MEDIA-SEQUENCE:0"]
    for segment in segments:
        lines += ["#EXTINF:3.0,", segment]
    return ("\n".join(lines + ["#EXT-X-ENDLIST"]) + "\n").encode()


def concat(*paths: str) -> bytes:
    return ("ffconcat version 1.0\n" + "".join(f"file '{p}'\n" for p in paths)).encode()


def hostile_uploads(secret: Path, port: int) -> dict[str, bytes]:
    data_uri = "data:audio/wav;base64," + base64.b64encode(secret.read_bytes()).decode()
    subfile = f"subfile,,start,0,end,{secret.stat().st_size},,:{secret}"
    return {
        "hls-http": hls(f"http://127.0.0.1:{port}/segment0.wav", f"http://127.0.0.1:{port}/segment1.ts"),
        "hls-file-url": hls(f"file://{secret}"),
        "hls-relative": hls(secret.name),
        "hls-subfile": hls(subfile),
        "hls-data-uri": hls(data_uri),
        "concat-relative": concat(secret.name),
        "concat-parent": concat(f"../{secret.name}"),
        "concat-absolute": concat(str(secret)),
        "concat-subfile": concat(subfile),
        "concat-plain-list": f"file {secret}\n".encode(),
        "bare-subfile-url": subfile.encode(),
        "bare-data-uri": data_uri.encode(),
        "bare-file-url": f"file://{secret}".encode(),
        "bare-http-url": f"http://127.0.0.1:{port}/x.wav".encode(),
        "id3-then-playlist": b"ID3\x04\x00\x00\x00\x00\x00\x00" + hls(f"file://{secret}"),
        "bom-then-playlist": b"\xef\xbb\xbf" + hls(f"http://127.0.0.1:{port}/a.ts"),
    }


def test_hostile_uploads_are_refused_and_open_nothing(secret, listener, private_tmp):
    port, connections = listener
    for name, data in hostile_uploads(secret, port).items():
        with pytest.raises(UnacceptedFormat) as refused:
            decode_audio(data, timeout=10)
        message = refused.value.user_message
        assert message.startswith("Not an audio format I accept: that looks like "), (name, message)
        assert SECRET_WORDS not in message
    assert connections() == 0
    assert sorted(p.name for p in private_tmp.iterdir()) == ["secret.wav"]  # no decode folder left


@pytest.mark.parametrize("kind, expected", [
    ("hls-http", "an HLS playlist"), ("concat-absolute", "a concat list"), ("bare-data-uri", "a data URI"),
    ("bare-subfile-url", "a link or a path to another file"), ("bare-http-url", "a link or a path to another file"),
])
def test_the_refusal_says_what_the_file_looked_like(secret, listener, kind, expected):
    data = hostile_uploads(secret, listener[0])[kind]
    with pytest.raises(UnacceptedFormat) as refused:
        decode_audio(data)
    assert f"that looks like {expected}." in refused.value.user_message


def test_playlists_behind_accepted_magic_bytes_are_not_followed(secret, listener):
    """The forced demuxer reads the bytes as its own format: a playlist after "OggS" is garbage."""
    port, connections = listener
    for magic in (b"OggS", b"fLaC", b"\x1a\x45\xdf\xa3", b"RIFF\x00\x00\x00\x00WAVE", b"\x00\x00\x00\x18ftypM4A "):
        for payload in (hls(f"http://127.0.0.1:{port}/s.ts"), hls(f"file://{secret}"), concat(str(secret))):
            with pytest.raises(AudioDecodeError):
                decode_audio(magic + b"\n" + payload, timeout=10)
    assert connections() == 0


@pytest.mark.parametrize("ext", list(FORMATS))
def test_every_accepted_format_is_recognised_by_content(tmp_path, ext):
    wav = espeak("one two three", tmp_path / "source.wav")
    data = encode(wav, ext, tmp_path, name="encoded").read_bytes()
    container = sniff_container(data)
    expected = {"ogg": "ogg", "webm": "matroska", "mp3": "mp3", "wav": "wav", "flac": "flac",
                "m4a": "mov", "mp4": "mov"}[ext]
    assert container is not None and container.demuxer == expected


@pytest.mark.parametrize("codec, fmt, demuxer", [
    (["-c:a", "aac"], "adts", "aac"), (["-c:a", "pcm_s16be"], "aiff", "aiff"), (["-c:a", "libmp3lame"], "mp3", "mp3"),
    (["-c:a", "wmav2"], "asf", "asf"), (["-c:a", "pcm_s16le"], "caf", "caf"),
])
def test_other_audio_containers_decode(tmp_path, codec, fmt, demuxer):
    wav = espeak("the quick brown fox", tmp_path / "s.wav")
    out = tmp_path / f"s.{fmt}"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), *codec, "-f", fmt, str(out)],
                   check=True, capture_output=True)
    data = out.read_bytes()
    assert sniff_container(data).demuxer == demuxer
    assert decode_audio(data).seconds > 1


def test_mp3_with_id3_tag_is_mp3(tmp_path):
    wav = espeak("tagged", tmp_path / "s.wav")
    out = tmp_path / "s.mp3"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), "-metadata", "title=" + "x" * 3000,
                    "-id3v2_version", "3", str(out)], check=True)
    data = out.read_bytes()
    assert data.startswith(b"ID3")
    assert sniff_container(data) is containers.MP3
    assert decode_audio(data).seconds > 0.3


def test_ffmpeg_input_args_allow_only_the_input():
    args = ffmpeg_input_args(containers.OGG, "pipe:0")
    assert args == ["-protocol_whitelist", "pipe", "-format_whitelist", "ogg", "-f", "ogg", "-i", "pipe:0"]
    args = ffmpeg_input_args(containers.MP4, "/private/upload")
    assert args[:6] == ["-protocol_whitelist", "file", "-format_whitelist", "mov", "-f", "mov"]
    assert args[args.index("-enable_drefs") + 1] == "0" and args[-2:] == ["-i", "file:/private/upload"]
    with pytest.raises(ValueError):
        ffmpeg_input_args(containers.MP4, "relative/upload")


def test_mp4_decodes_from_a_private_folder_that_is_removed(private_tmp, tmp_path_factory, monkeypatch):
    source = tmp_path_factory.mktemp("src")
    mp4 = encode(espeak("private folder", source / "s.wav"), "m4a", source).read_bytes()
    seen: list[tuple[str, int]] = []
    original = containers.ffmpeg_input_args

    def watching(container, path):  # records the folder ffmpeg reads from while it exists
        if path != "pipe:0":
            folder = os.path.dirname(path)
            seen.append((folder, stat.S_IMODE(os.stat(folder).st_mode)))
        return original(container, path)

    monkeypatch.setattr(decode_module, "ffmpeg_input_args", watching)
    assert decode_audio(mp4).seconds > 0.3
    [(folder, mode)] = seen
    assert os.path.dirname(folder) == str(private_tmp) and mode == 0o700
    assert not os.path.exists(folder)


def test_tts_and_playback_decoders_refuse_playlists(secret, listener, tmp_path):
    port, connections = listener
    with pytest.raises(EngineFailed):
        mp3_to_wav(hls(f"http://127.0.0.1:{port}/a.mp3"))
    playlist = tmp_path / "reply.wav"
    playlist.write_bytes(concat(str(secret)))
    with pytest.raises(RuntimeError, match="not an audio container"):
        pcm_for_discord(playlist)
    assert connections() == 0
