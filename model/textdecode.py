"""Turn uploaded bytes into text, or refuse clearly.

Discord users upload files from Excel, Notepad and phones, so BOMs, UTF-16
and Windows code pages all show up; binary files must be refused early.
"""

from __future__ import annotations

import codecs
import unicodedata

from errors import Phrase

from .errors import DatasetError

_ALLOWED_CONTROLS = frozenset("\t\n\r\f\v")
_NOT_TEXT = Phrase(
    "That file doesn't look like text. Please upload a UTF-8 CSV, TSV, JSON, "
    "JSONL or plain-text file."
)


def _control_ratio_ok(text: str) -> bool:
    """True when the text has (almost) no control or unassigned characters."""
    if not text:
        return True
    bad = 0
    for ch in text:
        if ch in _ALLOWED_CONTROLS:
            continue
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cs", "Co", "Cn"):
            bad += 1
    return bad <= max(2, len(text) // 100)


def _looks_like_legacy_text(text: str) -> bool:
    """Stricter check for guessed 8-bit encodings, where anything decodes."""
    if not _control_ratio_ok(text):
        return False
    if not text:
        return True
    plain = sum(1 for ch in text if ch.isalnum() or ch.isspace() or ch in ",.;:!?'\"-()[]{}/_&%$#@*+=<>|")
    return plain / len(text) >= 0.85


def _guess_bomless_utf16(data: bytes) -> str | None:
    """UTF-16 without BOM shows NULs in every other byte for ASCII-ish text."""
    if len(data) < 4 or len(data) % 2:
        return None
    even_nuls = data[0::2].count(0)
    odd_nuls = data[1::2].count(0)
    half = len(data) // 2
    if odd_nuls >= 0.4 * half and even_nuls <= 0.05 * half:
        return "utf-16-le"
    if even_nuls >= 0.4 * half and odd_nuls <= 0.05 * half:
        return "utf-16-be"
    return None


def _strict(data: bytes, encoding: str) -> str | None:
    try:
        return data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return None


def decode_text(data: bytes) -> str:
    """Decode ``data`` to str, raising DatasetError if it isn't readable text."""
    if data.startswith(codecs.BOM_UTF8):
        text = _strict(data[3:], "utf-8")
        if text is None:
            raise DatasetError(Phrase("The file starts like UTF-8 but contains invalid bytes. Please re-save it as UTF-8."))
    elif data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        text = _strict(data, "utf-32")
        if text is None:
            raise DatasetError(Phrase("The file looks like UTF-32 but can't be decoded. Please re-save it as UTF-8."))
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = _strict(data, "utf-16")
        if text is None:
            raise DatasetError(Phrase("The file looks like UTF-16 but can't be decoded. Please re-save it as UTF-8."))
    else:
        text = _strict(data, "utf-8")
        if text is None:
            guess = _guess_bomless_utf16(data)
            if guess:
                text = _strict(data, guess)
        if text is None:
            if b"\x00" in data:
                raise DatasetError(_NOT_TEXT)
            for legacy in ("cp1252", "latin-1"):
                candidate = _strict(data, legacy)
                if candidate is not None and _looks_like_legacy_text(candidate):
                    text = candidate
                    break
            if text is None:
                raise DatasetError(Phrase(
                    "I couldn't work out the file's text encoding. Please save it as UTF-8 and upload it again."))
    text = text.lstrip("\ufeff")
    if "\x00" in text or not _control_ratio_ok(text):
        raise DatasetError(_NOT_TEXT)
    return text
