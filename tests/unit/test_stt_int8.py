"""The int8 copy of the whisper model: made once in a child process, reused, transcribes as well.

Real model (tiny.en from its package), real CTranslate2, real speech; memory figures are
bench/memory.py's.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
from pathlib import Path

import pytest

from audio.decode import decode_audio
from audio.playback import keep_large_buffers_out_of_heap
from audio.stt import int8_copy, resolve_whisper_model
from tests.support.transcripts import wer
from audio.whisper_int8 import convert, quantized_model_dir
from tests.unit.test_stt_decode import encode, espeak

SENTENCE = "Please read the rules first, and welcome to the server."


@pytest.fixture(scope="module")
def source() -> str:
    path = resolve_whisper_model("tiny.en")
    assert os.path.isfile(os.path.join(path, "model.bin")), "tiny.en ships as a local float16 model"
    return path


@pytest.fixture(scope="module")
def converted(source, tmp_path_factory):
    return quantized_model_dir(source, tmp_path_factory.mktemp("speech-models"))


def transcribe(model_dir: str, audio) -> str:
    from faster_whisper import WhisperModel

    model = WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=2)
    segments, _info = model.transcribe(audio.samples(), language="en", beam_size=5, vad_filter=True,
                                       condition_on_previous_text=False)
    return " ".join(s.text.strip() for s in segments)


def test_copy_is_int8_sized_and_complete(source, converted):
    size = os.path.getsize(converted / "model.bin")
    assert size < 0.6 * os.path.getsize(os.path.join(source, "model.bin"))  # float16 -> int8 weights
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        if os.path.isfile(os.path.join(source, name)):
            assert (converted / name).read_bytes() == open(os.path.join(source, name), "rb").read()
    assert not [p for p in converted.parent.iterdir() if p.name.startswith(".")]  # no staging left


@pytest.mark.slow
def test_copy_transcribes_like_the_original(source, converted, tmp_path):
    audio = decode_audio(encode(espeak(SENTENCE, tmp_path / "s.wav"), "ogg", tmp_path).read_bytes())
    heard = transcribe(converted, audio)
    assert wer(SENTENCE, heard) <= 0.2, heard
    assert wer(transcribe(source, audio), heard) <= 0.1


def test_copy_is_made_once_and_reused(source, converted):
    made = os.stat(converted / "model.bin").st_mtime_ns
    assert quantized_model_dir(source, converted.parent) == converted
    assert os.stat(converted / "model.bin").st_mtime_ns == made


def test_a_model_that_cannot_be_converted_is_used_as_it_is(tmp_path, caplog):
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "model.bin").write_bytes(b"not a ctranslate2 model")
    with pytest.raises(RuntimeError):
        quantized_model_dir(broken, tmp_path / "cache")
    with caplog.at_level(logging.WARNING, logger="audio.stt"):
        assert int8_copy(str(broken), tmp_path / "cache") == str(broken)
    assert "no int8 copy" in caplog.text
    assert [p.name for p in (tmp_path / "cache").iterdir()] == []  # nothing half-written kept
    assert int8_copy("Systran/faster-whisper-base", tmp_path / "cache") == "Systran/faster-whisper-base"
    assert int8_copy(str(broken), None) == str(broken)


def test_heap_setting_applies_on_glibc():
    assert keep_large_buffers_out_of_heap() is True


def test_processes_sharing_the_cache_make_one_copy(source, tmp_path):
    """Two bots (or test workers) starting at once with one MODEL_COPIES_DIR: both get the copy,
    it is converted once, and the loser of a race leaves no staging folder behind."""
    cache = tmp_path / "shared"
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        made = list(pool.map(lambda _: quantized_model_dir(source, cache), range(2)))
    assert made[0] == made[1] and (made[0] / "model.bin").is_file()
    assert [p.name for p in cache.iterdir()] == [made[0].name]


def test_a_copy_finished_first_elsewhere_is_kept(source, converted, tmp_path):
    before = os.stat(converted / "model.bin").st_mtime_ns
    convert(Path(source), converted)  # the target already exists: the other process won
    assert os.stat(converted / "model.bin").st_mtime_ns == before
    assert not [p for p in converted.parent.iterdir() if p.name.startswith(".")]
