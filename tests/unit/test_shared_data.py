"""Shared test data: at ../shared beside the repository; absent, a test fails under CI and skips elsewhere."""
from __future__ import annotations

import pytest

from tests.support import shared_data
from tests.support.shared_data import SHARED, shared_file


def test_shared_data_is_beside_the_repository():
    assert SHARED == shared_data.ROOT.parent / "shared"
    assert (shared_data.ROOT / "tests" / "support" / "shared_data.py").is_file()


@pytest.mark.parametrize("value", ["true", "1", "yes"])
def test_a_missing_file_fails_under_ci(monkeypatch, tmp_path, value):
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match="CI must provide"):
        shared_file(tmp_path / "absent.flac")


@pytest.mark.parametrize("value", [None, "", "false", "0"])
def test_a_missing_file_skips_elsewhere(monkeypatch, tmp_path, value):
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.skip.Exception, match="absent"):
        shared_file(tmp_path / "absent.flac")


def test_a_present_file_is_returned(monkeypatch, tmp_path):
    monkeypatch.setenv("CI", "true")
    present = tmp_path / "there.flac"
    present.write_bytes(b"x")
    assert shared_file(present) == present
