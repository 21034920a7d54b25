"""The `DATA_DIR/files` sandbox: reading files and zipping folders the bot's owners name in chat.

Paths typed in chat are hostile, so nothing here resolves a path and opens it again
later (a symlink could be swapped in between).  A path is split into names, and each
name is opened relative to the folder opened before it, never following a symlink
(`O_NOFOLLOW`); the file is then read through that one handle.  `..`, absolute paths,
symlinks (inside or out), devices and FIFOs are refused with a polite reason, and
names are measured in bytes, as the filesystem measures them.  Everything blocks: call
it from a worker thread.
"""
from __future__ import annotations

import errno
import os
import secrets
import stat
import time
import unicodedata
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from errors import Phrase, UserError

ARCHIVES_DIRNAME = "archives"
NAME_MAX = 255  # bytes per file name on Linux filesystems
CHUNK = 1 << 20


class SandboxError(UserError):
    """A user-supplied path is unusable; `user_message` says why, politely."""


def format_size(n: float) -> Phrase:
    """'512 bytes', '1.5 MB' (a Phrase: the unit is said in the reader's language)."""
    if n < 1024:
        return Phrase("{size} bytes", size=int(n))
    for unit in (Phrase("{size:.1f} KB"), Phrase("{size:.1f} MB")):
        n /= 1024
        if n < 1024:
            return Phrase(unit, size=n)
    return Phrase("{size:.1f} GB", size=n / 1024)


def split_user_path(user_path: str, *, max_length: int = 4096) -> list[str]:
    """The names of a relative path typed by a user, or SandboxError. `.` (or nothing after
    stripping `./`) is the root itself: an empty list."""
    path = user_path.strip()
    if not path:
        raise SandboxError(Phrase("Please give a path inside the files folder."))
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in path):
        raise SandboxError(Phrase("That path contains control characters, which are not allowed."))
    encoded = path.encode("utf-8")
    if len(encoded) > max_length:
        raise SandboxError(Phrase("That path is too long (the limit is {limit} bytes).", limit=max_length))
    if path.startswith(("/", "\\", "~")) or (len(path) > 1 and path[1] == ":"):
        raise SandboxError(Phrase("Paths are relative to the files folder; absolute paths are not allowed."))
    names = [name for name in path.replace("\\", "/").split("/") if name not in ("", ".")]
    if ".." in names:
        raise SandboxError(Phrase("That path leads outside the files folder, so I won't touch it."))
    for name in names:
        if len(name.encode("utf-8")) > NAME_MAX:
            raise SandboxError(Phrase("A name in that path is too long (the limit is {limit} bytes per name).",
                                          limit=NAME_MAX))
    return names


def _open_flags(directory: bool) -> int:
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK  # NONBLOCK: a FIFO must not hang us
    return flags | os.O_DIRECTORY if directory else flags


@contextmanager
def _open_in(root: Path, names: list[str], user_path: str, *, directory: bool) -> Iterator[int]:
    """A file descriptor for `names` under `root`, reached one name at a time, no symlinks."""
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for index, name in enumerate(names):
            last = index == len(names) - 1
            try:
                child = os.open(name, _open_flags(directory or not last), dir_fd=fd)
            except OSError as exc:
                raise _refusal(exc, user_path, directory=directory and last) from None
            os.close(fd)
            fd = child
        mode = os.fstat(fd).st_mode
        if directory and not stat.S_ISDIR(mode):
            raise SandboxError(Phrase("There is no folder `{path}` in the files folder.", path=user_path))
        if not directory and stat.S_ISDIR(mode):
            raise SandboxError(Phrase("`{path}` is a folder; use `archive` to get a folder as a zip.", path=user_path))
        if not directory and not stat.S_ISREG(mode):
            raise SandboxError(Phrase("`{path}` is not a regular file, so I won't read it.", path=user_path))
        yield fd
    finally:
        os.close(fd)


def _refusal(exc: OSError, user_path: str, *, directory: bool) -> SandboxError:
    if exc.errno == errno.ELOOP:
        return SandboxError(Phrase("`{path}` goes through a symbolic link; I don't follow links.", path=user_path))
    if exc.errno == errno.ENAMETOOLONG:
        return SandboxError(Phrase("That path is too long for the filesystem."))
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        if directory:
            return SandboxError(Phrase("There is no folder `{path}` in the files folder.", path=user_path))
        return SandboxError(Phrase("There is no file `{path}` in the files folder.", path=user_path))
    if exc.errno == errno.EACCES:
        return SandboxError(Phrase("I'm not allowed to read `{path}`.", path=user_path))
    return SandboxError(Phrase("That path cannot be used."))


@dataclass(frozen=True)
class SandboxFile:
    relative_path: str
    name: str
    data: bytes


def read_file(root: Path, user_path: str, *, max_length: int = 4096, max_bytes: int) -> SandboxFile:
    """Read one file of the sandbox through a single no-symlink handle; files larger than
    `max_bytes` (the channel's upload limit) are refused before reading."""
    names = split_user_path(user_path, max_length=max_length)
    if not names:
        raise SandboxError(Phrase("`{path}` is a folder; use `archive` to get a folder as a zip.", path=user_path))
    with _open_in(root, names, user_path, directory=False) as fd:
        size = os.fstat(fd).st_size
        if size > max_bytes:
            raise SandboxError(Phrase("`{name}` is {size}, larger than the upload limit here ({limit}), so I can't "
                                      "attach it.", name=names[-1], size=format_size(size), limit=format_size(max_bytes)))
        chunks = []
        while chunk := os.read(fd, CHUNK):
            chunks.append(chunk)
            if sum(map(len, chunks)) > max_bytes:  # grew while we read it
                raise SandboxError(Phrase("`{name}` grew past the upload limit while I read it.", name=names[-1]))
    return SandboxFile("/".join(names), names[-1], b"".join(chunks))


@dataclass(frozen=True)
class Archive:
    path: Path
    file_count: int
    size: int
    input_bytes: int


def archive_folder(root: Path, user_path: str, *, max_length: int = 4096, max_input_bytes: int,
                   keep: int) -> Archive:
    """Zip a folder of the sandbox into `root/archives` under a name no other archive has,
    then keep only the newest `keep` archives.

    Symlinks, devices and earlier archives are skipped; a folder holding more than
    `max_input_bytes` is refused before anything is written."""
    names = split_user_path(user_path, max_length=max_length)
    archives = root / ARCHIVES_DIRNAME
    archives.mkdir(parents=True, exist_ok=True)
    skip = os.stat(archives, follow_symlinks=False)
    with _open_in(root, names, user_path, directory=True) as folder:
        files = _regular_files(folder, (skip.st_dev, skip.st_ino))
        total = sum(size for _, _, size in files)
        if total > max_input_bytes:
            raise SandboxError(Phrase("`{path}` holds {size}, more than the {limit} an archive may take "
                                      "(ARCHIVE_MAX_BYTES).", path=user_path, size=format_size(total),
                                      limit=format_size(max_input_bytes)))
        label = names[-1] if names else "files"
        target, count = _write_zip(archives, label, folder, files)
    _prune_archives(archives, keep)
    return Archive(path=target, file_count=count, size=target.stat().st_size, input_bytes=total)


def _regular_files(folder: int, skip: tuple[int, int]) -> list[tuple[str, str, int]]:
    """(relative dir, name, size) of every regular file under `folder`, never via a symlink."""
    found = []
    for dirpath, dirnames, filenames, dir_fd in os.fwalk(".", dir_fd=folder, follow_symlinks=False):
        keep_dirs = []
        for name in sorted(dirnames):
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode) and (st.st_dev, st.st_ino) != skip:
                keep_dirs.append(name)
        dirnames[:] = keep_dirs
        for name in sorted(filenames):
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            if stat.S_ISREG(st.st_mode):
                found.append((os.path.normpath(dirpath), name, st.st_size))
    return found


def _write_zip(archives: Path, label: str, folder: int, files: list[tuple[str, str, int]]) -> tuple[Path, int]:
    tmp = archives / f".archive-{secrets.token_hex(6)}.tmp"
    count = 0
    try:
        with zipfile.ZipFile(tmp, "x", compression=zipfile.ZIP_DEFLATED) as zf:
            for directory, name, _size in files:
                relative = name if directory == "." else f"{directory}/{name}"
                try:
                    fd = os.open(relative, _open_flags(directory=False), dir_fd=folder)
                except OSError:
                    continue  # replaced by a link or removed since the listing
                with os.fdopen(fd, "rb") as source:
                    st = os.fstat(source.fileno())
                    if not stat.S_ISREG(st.st_mode):
                        continue
                    info = zipfile.ZipInfo(relative, time.localtime(st.st_mtime)[:6])
                    info.compress_type = zipfile.ZIP_DEFLATED
                    with zf.open(info, "w", force_zip64=True) as sink:
                        while chunk := source.read(CHUNK):
                            sink.write(chunk)
                count += 1
        stamp = time.strftime("%Y%m%d-%H%M%S")
        while True:  # link, not rename: an existing archive is never replaced
            target = archives / f"{label}-{stamp}-{secrets.token_hex(3)}.zip"
            try:
                os.link(tmp, target)
                break
            except FileExistsError:
                continue
    finally:
        tmp.unlink(missing_ok=True)
    return target, count


def _prune_archives(archives: Path, keep: int) -> None:
    zips = sorted((p for p in archives.glob("*.zip") if p.is_file() and not p.is_symlink()),
                  key=lambda p: p.stat().st_mtime_ns)
    for old in zips[: max(0, len(zips) - max(1, keep))]:
        old.unlink(missing_ok=True)
