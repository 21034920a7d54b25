"""The `DATA_DIR/files` sandbox: path checks, atomic writes, zip archives.

Users type paths in chat, so every path is treated as hostile: it is resolved
(symlinks followed) and must stay inside the sandbox root, whatever it says.
"""
from __future__ import annotations

import os
import tempfile
import time
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path

from errors import UserError


ARCHIVES_DIRNAME = "archives"


class SandboxError(UserError):
    """A user-supplied path is unusable; `user_message` says why, politely."""


def _check_text(user_path: str, max_length: int) -> str:
    path = user_path.strip()
    if not path:
        raise SandboxError("Please give a path inside the files folder.")
    if len(path) > max_length:
        raise SandboxError(f"That path is too long (the limit is {max_length} characters).")
    if any(unicodedata.category(c) == "Cc" for c in path):
        raise SandboxError("That path contains control characters, which are not allowed.")
    if path.startswith(("/", "\\", "~")) or (len(path) > 1 and path[1] == ":"):
        raise SandboxError("Paths are relative to the files folder; absolute paths are not allowed.")
    return path


def resolve_in_sandbox(root: Path, user_path: str, *, max_length: int = 255) -> Path:
    """Return the real path of `user_path` under `root`, or raise SandboxError.

    The check is on the fully resolved path, so `..`, symlinks that lead out and
    odd spellings are all caught by one rule: the result must be inside root.
    """
    text = _check_text(user_path, max_length)
    real_root = root.resolve()
    try:
        candidate = (real_root / text).resolve(strict=False)
    except (OSError, RuntimeError, ValueError):  # symlink loops, odd bytes
        raise SandboxError("That path cannot be used.") from None
    if candidate != real_root and not candidate.is_relative_to(real_root):
        raise SandboxError("That path leads outside the files folder, so I won't touch it.")
    return candidate


def find_file(root: Path, user_path: str, *, max_length: int = 255) -> Path:
    path = resolve_in_sandbox(root, user_path, max_length=max_length)
    if not path.is_file():
        if path.is_dir():
            raise SandboxError(f"`{user_path}` is a folder; use `archive` to get a folder as a zip.")
        raise SandboxError(f"There is no file `{user_path}` in the files folder.")
    return path


def find_dir(root: Path, user_path: str, *, max_length: int = 255) -> Path:
    path = resolve_in_sandbox(root, user_path, max_length=max_length)
    if not path.is_dir():
        raise SandboxError(f"There is no folder `{user_path}` in the files folder.")
    return path


@dataclass(frozen=True)
class Archive:
    path: Path
    file_count: int
    size: int


def archive_dir(root: Path, directory: Path) -> Archive:
    """Zip `directory` (already sandbox-checked) into root/archives, atomically.

    Files whose real path leaves the sandbox (symlinks) and earlier archives are skipped.
    Blocking: call it from a worker thread.
    """
    real_root = root.resolve()
    archives = real_root / ARCHIVES_DIRNAME
    archives.mkdir(parents=True, exist_ok=True)
    label = directory.name if directory != real_root else "files"
    target = archives / f"{label}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid() % 1000:03d}.zip"

    fd, tmp = tempfile.mkstemp(dir=archives, prefix=".archive.", suffix=".tmp")
    os.close(fd)
    count = 0
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for dirpath, dirnames, filenames in os.walk(directory):
                here = Path(dirpath)
                dirnames[:] = sorted(d for d in dirnames if not (here / d).resolve() == archives)
                for name in sorted(filenames):
                    file = here / name
                    real = file.resolve()
                    if not real.is_relative_to(real_root) or real.is_relative_to(archives) or not real.is_file():
                        continue
                    zf.write(real, arcname=str(file.relative_to(directory)))
                    count += 1
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Archive(path=target, file_count=count, size=target.stat().st_size)
