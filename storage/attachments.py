"""Making files fit a channel's upload limit before the bot attaches them.

Discord refuses a message whose files pass the limit, and the user would only see an
apology.  So: files that fit go as they are; text files too big are zipped (CSV
compresses 5-10x); what still does not fit is cut to whole rows that do, or left out,
and every change is said in a note the reply carries.  No discord import.
"""
from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

from errors import Phrase
from storage.files import format_size

TEXT_SUFFIXES = (".csv", ".txt", ".json", ".jsonl", ".tsv", ".log")
HEADROOM = 4096  # multipart overhead Discord counts against the limit


@dataclass(frozen=True)
class Outgoing:
    filename: str
    data: bytes


def fit_attachments(files: list[Outgoing], limit: int) -> tuple[list[Outgoing], list[str]]:
    """Files whose total fits `limit` bytes, and notes saying what was changed to get there."""
    budget = max(0, limit - HEADROOM)
    kept: dict[int, Outgoing] = {}  # by position in `files`, so the order is kept
    notes: list[str] = []
    for index in sorted(range(len(files)), key=lambda i: len(files[i].data)):  # small ones first
        file = files[index]
        room = budget - sum(len(f.data) for f in kept.values())
        if len(file.data) <= room:
            kept[index] = file
            continue
        if file.filename.lower().endswith(TEXT_SUFFIXES):
            zipped = _zip(file)
            if len(zipped.data) <= room:
                kept[index] = zipped
                notes.append(Phrase("`{file}` was {size}, so it is zipped.", file=file.filename,
                                    size=format_size(len(file.data))))
                continue
            cut = _trim_rows(file, room)
            if cut is not None:
                kept[index] = cut[0]
                notes.append(Phrase("`{file}` is too big for this channel even zipped, so it has only its first "
                                    "{rows:,} rows.", file=file.filename, rows=cut[1]))
                continue
        notes.append(Phrase("`{file}` ({size}) is too big to attach here, so it is left out.", file=file.filename,
                            size=format_size(len(file.data))))
    return [kept[i] for i in sorted(kept)], notes


def _zip(file: Outgoing) -> Outgoing:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr(file.filename, file.data)
    return Outgoing(file.filename + ".zip", buffer.getvalue())


def _trim_rows(file: Outgoing, room: int) -> tuple[Outgoing, int] | None:
    """The header and as many leading rows as fit `room` once zipped (binary search on rows)."""
    lines = file.data.splitlines(keepends=True)
    if len(lines) < 2:
        return None
    header, rows = lines[0], lines[1:]
    best: tuple[Outgoing, int] | None = None
    low, high = 1, len(rows) - 1
    while low <= high:
        middle = (low + high) // 2
        candidate = _zip(Outgoing(file.filename, header + b"".join(rows[:middle])))
        if len(candidate.data) <= room:
            best, low = (candidate, middle), middle + 1
        else:
            high = middle - 1
    return best
