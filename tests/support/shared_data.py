"""Data shared between projects, kept beside the repository in `../shared` (never at one
machine's absolute path).

Tests that need a shared file call `shared_file(path)`: under CI (the CI environment
variable set, as CI services do: CI=true) a missing file fails the test loudly, since CI must
have the data; on a developer's machine without it, the test is skipped with the reason.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]  # the repository
SHARED = ROOT.parent / "shared"
SPEECH = SHARED / "data" / "speech"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def shared_file(path: Path) -> Path:
    """`path` if it exists; otherwise fail under CI, skip elsewhere."""
    if path.is_file():
        return path
    if in_ci():
        pytest.fail(f"shared test data {path} is missing; CI must provide ../shared beside the repository",
                    pytrace=False)
    pytest.skip(f"shared test data {path} is absent (required under CI)")
