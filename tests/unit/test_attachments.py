"""Attachments are made to fit the channel's upload limit, and the reply says how."""
from __future__ import annotations

import io
import os
import zipfile

from storage.attachments import Outgoing, fit_attachments


def csv_rows(n: int) -> bytes:
    return b"text,label\n" + b"".join(f"message number {i} with some words,label{i % 7}\n".encode() for i in range(n))


def test_files_that_fit_are_untouched():
    files = [Outgoing("a.png", b"x" * 100), Outgoing("p.csv", b"t,l\n1,2\n")]
    kept, notes = fit_attachments(files, 10_000 + 4096)
    assert kept == files and notes == []


def test_a_big_csv_is_zipped_and_said_so():
    data = csv_rows(20_000)
    kept, notes = fit_attachments([Outgoing("predictions.csv", data)], len(data) // 2)
    assert [f.filename for f in kept] == ["predictions.csv.zip"]
    assert zipfile.ZipFile(io.BytesIO(kept[0].data)).read("predictions.csv") == data
    assert "zipped" in notes[0]


def test_a_csv_too_big_even_zipped_is_cut_to_whole_rows():
    data = b"text,label\n" + b"".join(os.urandom(30).hex().encode() + b",x\n" for _ in range(5000))
    limit = 4096 + 50_000
    kept, notes = fit_attachments([Outgoing("predictions.csv", data)], limit)
    assert len(kept) == 1 and len(kept[0].data) <= limit - 4096
    inner = zipfile.ZipFile(io.BytesIO(kept[0].data)).read("predictions.csv")
    assert inner.startswith(b"text,label\n") and data.startswith(inner) and inner.endswith(b"\n")
    assert "first" in notes[0] and "rows" in notes[0]


def test_binary_files_that_cannot_fit_are_left_out_with_a_note():
    png = os.urandom(20_000)
    kept, notes = fit_attachments([Outgoing("matrix.png", png), Outgoing("p.csv", b"t,l\n")], 4096 + 10_000)
    assert [f.filename for f in kept] == ["p.csv"]
    assert "matrix.png" in notes[0] and "left out" in notes[0]
