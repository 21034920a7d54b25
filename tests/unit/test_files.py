"""The files sandbox: whatever the path says, nothing outside the root is reachable."""
from __future__ import annotations

import os
import zipfile

import pytest

from storage.atomic import atomic_write_bytes
from storage.files import SandboxError, archive_folder, read_file, split_user_path

LIMIT = 10 * 1024 * 1024


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "files"
    (root / "docs" / "sub").mkdir(parents=True)
    (root / "docs" / "a.txt").write_text("a")
    (root / "docs" / "sub" / "b.txt").write_text("b")
    (tmp_path / "secret").write_text("secret")
    os.symlink(tmp_path / "secret", root / "docs" / "out-link")
    os.symlink(root / "docs" / "a.txt", root / "in-link")
    os.symlink(tmp_path, root / "dir-out")
    return root


def test_reads_files_inside(root):
    found = read_file(root, "docs/a.txt", max_bytes=LIMIT)
    assert (found.data, found.name, found.relative_path) == (b"a", "a.txt", "docs/a.txt")
    assert read_file(root, "./docs//sub/b.txt", max_bytes=LIMIT).data == b"b"


@pytest.mark.parametrize("path", [
    "../secret", "docs/../../secret", "docs/../a.txt", "/etc/passwd", "docs/out-link", "dir-out/secret",
    "in-link", "~/x", "a\x00b", "docs/\x1b[31m", "", "   ", "C:\\windows", "..\\secret",
])
def test_refuses_every_way_out(root, path):
    with pytest.raises(SandboxError) as info:
        read_file(root, path, max_bytes=LIMIT)
    assert info.value.user_message
    assert "secret" not in info.value.user_message or path.endswith("secret")


def test_symlinks_are_never_followed_even_inside(root):
    with pytest.raises(SandboxError, match="symbolic link"):
        read_file(root, "in-link", max_bytes=LIMIT)


def test_names_are_measured_in_bytes(root):
    # 100 characters but 300 bytes: a filesystem refuses it, so do we (politely, no traceback)
    with pytest.raises(SandboxError, match="too long"):
        read_file(root, "é" * 150, max_bytes=LIMIT)
    with pytest.raises(SandboxError, match="too long"):
        split_user_path("a/" * 3000, max_length=4096)


def test_fifo_and_devices_are_refused_without_hanging(root):
    os.mkfifo(root / "pipe")
    with pytest.raises(SandboxError, match="not a regular file"):
        read_file(root, "pipe", max_bytes=LIMIT)


def test_file_larger_than_the_limit_is_refused_before_reading(root):
    (root / "big.bin").write_bytes(b"x" * 2048)
    with pytest.raises(SandboxError, match="larger than the upload limit"):
        read_file(root, "big.bin", max_bytes=1024)


def test_percent_encoding_is_not_decoded(root):
    with pytest.raises(SandboxError, match="no file"):
        read_file(root, "%2e%2e/secret", max_bytes=LIMIT)


def test_folders_and_files_are_told_apart(root):
    with pytest.raises(SandboxError, match="is a folder"):
        read_file(root, "docs", max_bytes=LIMIT)
    with pytest.raises(SandboxError, match="is a folder"):
        read_file(root, ".", max_bytes=LIMIT)
    with pytest.raises(SandboxError, match="no folder"):
        archive_folder(root, "docs/a.txt", max_input_bytes=LIMIT, keep=5)


def test_archive_skips_links_and_earlier_archives(root):
    first = archive_folder(root, ".", max_input_bytes=LIMIT, keep=5)
    names = sorted(zipfile.ZipFile(first.path).namelist())
    assert names == ["docs/a.txt", "docs/sub/b.txt"]
    assert first.file_count == 2 and first.size == first.path.stat().st_size
    second = archive_folder(root, ".", max_input_bytes=LIMIT, keep=5)
    assert "archives" not in " ".join(zipfile.ZipFile(second.path).namelist())
    assert not list((root / "archives").glob(".*tmp"))


def test_archives_in_the_same_second_never_overwrite_each_other(root):
    made = [archive_folder(root, "docs", max_input_bytes=LIMIT, keep=10).path for _ in range(4)]
    assert len(set(made)) == 4 and all(p.is_file() for p in made)


def test_archives_are_pruned_to_the_newest(root):
    made = [archive_folder(root, "docs", max_input_bytes=LIMIT, keep=2).path for _ in range(4)]
    assert sorted(p.name for p in (root / "archives").glob("*.zip")) == sorted(p.name for p in made[-2:])


def test_archive_input_is_capped(root):
    (root / "docs" / "big.bin").write_bytes(b"x" * 5000)
    with pytest.raises(SandboxError, match="more than the"):
        archive_folder(root, "docs", max_input_bytes=4000, keep=5)
    assert not list((root / "archives").glob("*.zip"))


def test_atomic_write_replaces_whole_files(tmp_path):
    target = tmp_path / "out" / "file.bin"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["file.bin"]
