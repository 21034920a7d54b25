"""Parse dataset uploads (CSV/TSV, JSON, JSONL, plain text) into Examples.

The format is detected from the content because chat users rarely name
files correctly; the filename extension only breaks ties.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from errors import Phrase

from .errors import DatasetError
from .textdecode import decode_text
from .types import Example

TEXT_COLUMNS = (
    "text", "sentence", "utterance", "message", "query", "question", "input",
    "content", "example", "phrase", "prompt", "review", "body", "comment",
    "tweet", "sms", "msg", "document",
)
LABEL_COLUMNS = (
    "label", "intent", "category", "class", "target", "sentiment", "tag",
    "topic", "labels", "classification",
)
RESPONSE_COLUMNS = ("response", "reply", "answer", "responses", "bot_response")
_WRAPPER_KEYS = ("examples", "data", "rows", "items", "dataset", "samples", "records")
_DELIMITERS = ("\t", ",", ";", "|")
_HINTS = {
    ".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".json": "json",
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".txt": "text", ".text": "text",
}


@dataclass(slots=True)
class ParsedData:
    """Examples plus what we learned about the upload while parsing."""

    examples: list[Example]
    format: str
    labelled: bool
    has_response: bool
    warnings: list[str] = field(default_factory=list)


class _Rows:
    """Collects examples, enforcing the row limit and label rules as it goes."""

    def __init__(self, max_rows: int, default_label: str | None, allow_unlabelled: bool) -> None:
        self.items: list[Example] = []
        self.max_rows = max_rows
        self.default_label = default_label
        self.allow_unlabelled = allow_unlabelled
        self.missing_labels: list[str] = []

    def add(self, where: str, text: Any, label: Any = None, response: Any = None) -> None:
        text_s = _as_text(text, where, "text")
        if not text_s:
            raise DatasetError(Phrase("{where} has an empty text. Fill it in or delete that row, then upload again.",
                                      where=where))
        label_s = _as_text(label, where, "label") if label is not None else ""
        if not label_s:
            label_s = self.default_label or ""
            if not label_s:
                self.missing_labels.append(where)
        response_s = _as_text(response, where, "response") if response is not None else ""
        if len(self.items) >= self.max_rows:
            raise DatasetError(Phrase(
                "That dataset has more than {limit:,} rows, which is my limit. Please split it or trim it.",
                limit=self.max_rows))
        self.items.append(Example(text_s, label_s or None, response_s or None))

    def finish(self, fmt: str, warnings: list[str]) -> ParsedData:
        if not self.items:
            raise DatasetError(Phrase("I couldn't find any examples in that data. Is the file empty?"))
        labelled_count = len(self.items) - len(self.missing_labels)
        if self.missing_labels:
            if labelled_count == 0 and self.allow_unlabelled:
                pass
            elif labelled_count == 0:
                raise DatasetError(Phrase(
                    "That data has no labels. Add a `label` column (CSV) or `label` field (JSON), "
                    "or give one label for all lines, e.g. `!train positive`."))
            else:
                first = self.missing_labels[:3]  # "Row 3, Row 7": each said in the reader's language
                shown = Phrase(", ".join(f"{{where{i}}}" for i in range(len(first))),
                               **{f"where{i}": where for i, where in enumerate(first)})
                if len(self.missing_labels) > 3:
                    raise DatasetError(Phrase("Some rows have no label ({rows} and {more} more). Label every row, then "
                                              "upload again.", rows=shown, more=len(self.missing_labels) - 3))
                raise DatasetError(Phrase("Some rows have no label ({rows}). Label every row, then upload again.",
                                          rows=shown))
        has_response = any(e.response for e in self.items)
        return ParsedData(self.items, fmt, labelled_count > 0, has_response, warnings)


_FIELDS = {"text": Phrase("text"), "label": Phrase("label"), "response": Phrase("response")}  # said in a message


def too_big(size: int, max_bytes: int) -> Phrase:
    return Phrase("That file is {size:.1f} MB; the limit is {limit:.1f} MB. Please trim it and upload again.",
                  size=size / 1_000_000, limit=max_bytes / 1_000_000)


def _as_text(value: Any, where: str, what: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        raise DatasetError(Phrase("{where}: the {field} should be text, not true/false.", where=where,
                                  field=_FIELDS[what]))
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return value.strip()
    raise DatasetError(Phrase("{where}: the {field} should be text, not a list or object.", where=where,
                              field=_FIELDS[what]))


def _norm_key(key: str) -> str:
    return key.strip().strip('"\'').strip().lower().replace(" ", "_")


def _pick(keys: list[str], names: tuple[str, ...]) -> int | None:
    """Index of the best-ranked synonym present in ``keys``."""
    normed = [_norm_key(k) for k in keys]
    for name in names:
        if name in normed:
            return normed.index(name)
    return None


def format_hint(filename: str | None) -> str | None:
    """The format suggested by a filename's extension, if any."""
    if not filename:
        return None
    return _HINTS.get(PurePath(filename).suffix.lower())


def parse_dataset(
    data: bytes | str,
    filename: str | None = None,
    default_label: str | None = None,
    *,
    max_bytes: int = 10_000_000,
    max_rows: int = 200_000,
    allow_unlabelled: bool = False,
) -> ParsedData:
    """Parse an upload; raise DatasetError with a friendly message if unusable."""
    size = len(data.encode("utf-8")) if isinstance(data, str) else len(data)
    if size == 0:
        raise DatasetError(Phrase("That file is empty. Please upload a file with one example per line."))
    if size > max_bytes:
        raise DatasetError(too_big(size, max_bytes))
    text = decode_text(data) if isinstance(data, bytes) else decode_text(data.encode("utf-8", "surrogatepass"))
    stripped = text.strip()
    if not stripped:
        raise DatasetError(Phrase("That file only contains blank space. Please upload some examples."))
    label = (default_label or "").strip() or None
    hint = format_hint(filename)
    rows = _Rows(max_rows, label, allow_unlabelled)

    if stripped[0] in "[{":
        parsed = _try_json(stripped, rows, hint)
        if parsed is not None:
            return parsed
        rows = _Rows(max_rows, label, allow_unlabelled)
    return _parse_delimited_or_lines(stripped, rows, hint)


# ---------------------------------------------------------------- JSON ----

def _try_json(stripped: str, rows: _Rows, hint: str | None) -> ParsedData | None:
    try:
        value = json.loads(stripped)
    except (ValueError, RecursionError) as exc:
        lines = [ln for ln in stripped.splitlines() if ln.strip()]
        if len(lines) > 1:
            values = _json_lines(lines)
            if values is not None:
                for i, item in enumerate(values, 1):
                    _add_json_item(rows, item, Phrase("Line {number}", number=i))
                return rows.finish("jsonl", [])
        if hint in ("json", "jsonl") or _meant_as_json(stripped):
            if isinstance(exc, json.JSONDecodeError):
                raise DatasetError(Phrase(
                    "That JSON is malformed (line {line}, column {column}: {problem}). Check for missing commas or "
                    "quotes, or use a JSON validator.", line=exc.lineno, column=exc.colno, problem=exc.msg)) from None
            raise DatasetError(Phrase(
                "That JSON is malformed. Check for missing commas or quotes, or use a JSON validator.")) from None
        return None
    _add_json_value(rows, value)
    return rows.finish("json", [])


def _meant_as_json(stripped: str) -> bool:
    """Content that can only have been an attempt at JSON (not "[1] a note")."""
    head = "".join(stripped[:8].split())[:2]
    first_line = stripped.split("\n", 1)[0].strip()
    return (
        stripped[0] == "{"
        or head[:2] in ("[{", '["', "[[", "[]")
        or first_line == "["
        or stripped.endswith("]") and stripped.startswith("[")
    )


def _json_lines(lines: list[str]) -> list[Any] | None:
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except (ValueError, RecursionError):
            return None
    return out


def _add_json_value(rows: _Rows, value: Any) -> None:
    if isinstance(value, list):
        for i, item in enumerate(value, 1):
            _add_json_item(rows, item, Phrase("Item {number}", number=i))
        return
    if isinstance(value, dict):
        keys = [k for k in value if isinstance(k, str)]
        if _pick(keys, TEXT_COLUMNS) is not None and not isinstance(value[keys[_pick(keys, TEXT_COLUMNS)]], list):
            _add_json_item(rows, value, Phrase("Item {number}", number=1))
            return
        wrapper = _pick(keys, _WRAPPER_KEYS)
        if wrapper is not None and isinstance(value[keys[wrapper]], list):
            _add_json_value(rows, value[keys[wrapper]])
            return
        if value and all(isinstance(v, (list, str)) for v in value.values()):
            # {"label": ["text", ...]} — a common way to write intents by hand.
            for lab, texts in value.items():
                for i, text in enumerate([texts] if isinstance(texts, str) else texts, 1):
                    rows.add(Phrase("'{label}' item {number}", label=lab, number=i), text, lab)
            return
    raise DatasetError(Phrase(
        'I don\'t recognise that JSON layout. Use a list like [{"text": "hi", "label": "greeting"}] '
        'or [["hi", "greeting"]].'))


def _add_json_item(rows: _Rows, item: Any, where: str) -> None:
    if isinstance(item, str):
        rows.add(where, item)
    elif isinstance(item, (list, tuple)):
        if not 1 <= len(item) <= 3:
            raise DatasetError(Phrase("{where} should be [text, label] or [text, label, response].", where=where))
        rows.add(where, *item)
    elif isinstance(item, dict):
        keys = [k for k in item if isinstance(k, str)]
        ti = _pick(keys, TEXT_COLUMNS)
        if ti is None:
            raise DatasetError(Phrase('{where} has no "text" field. Each object needs "text" and "label".',
                                      where=where))
        li = _pick(keys, LABEL_COLUMNS)
        ri = _pick(keys, RESPONSE_COLUMNS)
        rows.add(
            where,
            item[keys[ti]],
            item[keys[li]] if li is not None else None,
            item[keys[ri]] if ri is not None else None,
        )
    else:
        raise DatasetError(Phrase("{where} should be a text, a [text, label] pair or an object with text and label.",
                                  where=where))


# ------------------------------------------------------ CSV / TSV / text ----

def _header_layout(header: str, hint: str | None) -> tuple[str, list[str]] | None:
    """Pick the delimiter whose header cells name a text column."""
    order = list(_DELIMITERS)
    if hint == "tsv":
        order.remove("\t")
        order.insert(0, "\t")
    elif hint == "csv":
        order.remove(",")
        order.insert(0, ",")
    best: tuple[int, str, list[str]] | None = None
    for delim in order:
        if delim not in header:
            continue
        try:
            cells = next(csv.reader([header], delimiter=delim))
        except (csv.Error, StopIteration):
            continue
        if _pick(cells, TEXT_COLUMNS) is None:
            continue
        score = sum(x is not None for x in (_pick(cells, LABEL_COLUMNS), _pick(cells, RESPONSE_COLUMNS)))
        if best is None or score > best[0]:
            best = (score, delim, cells)
    if best is not None:
        return best[1], best[2]
    if _norm_key(header) in TEXT_COLUMNS:
        return "\x1f", [header]  # a lone text column: never split rows
    return None


def _parse_delimited_or_lines(stripped: str, rows: _Rows, hint: str | None) -> ParsedData:
    first_line = stripped.split("\n", 1)[0].rstrip("\r")
    layout = _header_layout(first_line, hint)
    if layout is None:
        if hint in ("csv", "tsv"):
            raise DatasetError(Phrase(
                "I couldn't find a text column. The first row must be a header such as `text,label` "
                "(I found: {found}).", found=repr(first_line[:80])))
        for i, line in enumerate(stripped.splitlines(), 1):
            if line.strip():
                rows.add(Phrase("Line {number}", number=i), line)
        return rows.finish("text", [])
    delim, header = layout
    ti = _pick(header, TEXT_COLUMNS)
    li = _pick(header, LABEL_COLUMNS)
    ri = _pick(header, RESPONSE_COLUMNS)
    assert ti is not None
    warnings: list[str] = []
    joined = 0
    try:
        reader = csv.reader(io.StringIO(stripped, newline=""), delimiter=delim)
        next(reader)
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            where = Phrase("Row {number}", number=reader.line_num)
            extra = len(row) - len(header)
            if extra > 0 and delim != "\x1f":
                # Unquoted delimiters inside the text: glue them back together.
                row = row[:ti] + [delim.join(row[ti : ti + extra + 1])] + row[ti + extra + 1 :]
                joined += 1
            text = row[ti] if ti < len(row) else ""
            label = row[li] if li is not None and li < len(row) else None
            response = row[ri] if ri is not None and ri < len(row) else None
            rows.add(where, text, label, response)
    except csv.Error as exc:
        raise DatasetError(Phrase("I couldn't read that CSV ({problem}). Check the quoting and upload again.",
                                  problem=str(exc))) from None
    if joined:
        warnings.append(Phrase("{count} row(s) had unquoted separators in the text; I joined them back together.",
                               count=joined))
    return rows.finish("tsv" if delim == "\t" else "csv", warnings)
