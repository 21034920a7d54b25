"""The files sandbox: whatever the path says, nothing outside the root is reachable."""
from __future__ import annotations

import os
import zipfile

import pytest

from storage.atomic import atomic_write_bytes
from storage.files import SandboxError, archive_dir, find_dir, find_file


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


def test_finds_files_inside(root):
    assert find_file(root, "docs/a.txt").read_text() == "a"
    assert find_file(root, "docs/sub/../a.txt").read_text() == "a"
    assert find_file(root, "in-link").read_text() == "a"  # a symlink staying inside is fine


@pytest.mark.parametrize("path", [
    "../secret", "docs/../../secret", "/etc/passwd", "docs/out-link", "dir-out/secret", "~/x",
    "a\x00b", "docs/\x1b[31m", "x" * 300, "", "   ", "C:\\windows",
])
def test_refuses_every_way_out(root, path):
    with pytest.raises(SandboxError) as info:
        find_file(root, path, max_length=255)
    assert info.value.user_message


def test_percent_encoding_is_not_decoded(root):
    with pytest.raises(SandboxError, match="no file"):
        find_file(root, "%2e%2e/secret")


def test_folders_and_files_are_told_apart(root):
    with pytest.raises(SandboxError, match="is a folder"):
        find_file(root, "docs")
    with pytest.raises(SandboxError, match="no folder"):
        find_dir(root, "docs/a.txt")
    assert find_dir(root, ".") == root.resolve()


def test_archive_skips_links_out_and_earlier_archives(root):
    first = archive_dir(root, find_dir(root, "."))
    names = sorted(zipfile.ZipFile(first.path).namelist())
    assert names == ["docs/a.txt", "docs/sub/b.txt", "in-link"]
    assert first.file_count == 3 and first.size == first.path.stat().st_size
    second = archive_dir(root, find_dir(root, "."))
    assert "archives" not in " ".join(zipfile.ZipFile(second.path).namelist())
    assert not list((root / "archives").glob(".*tmp"))


def test_atomic_write_replaces_whole_files(tmp_path):
    target = tmp_path / "out" / "file.bin"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["file.bin"]
