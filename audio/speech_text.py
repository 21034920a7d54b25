"""Turn a Discord message into plain words worth saying aloud, and split it into sentences.

Pure functions only: no engines, no I/O. A voice engine would otherwise read out
asterisks, whole URLs, code and snowflake ids, and a long reply would keep the
channel busy for minutes, so everything is cleaned and capped before synthesis.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Union

# Ids -> display names. A callable gets the id (as a string) and returns a name or None.
NameLookup = Union[Mapping[str, str], Callable[[str], "str | None"], None]

MORE = "and more"
"""Spoken after a reply that was cut at ``max_chars`` (in English; ``MORE_IN`` has other languages)."""
MORE_IN = {"en": MORE, "ru": "и так далее"}

_CODE_BLOCK = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)  # unclosed fence: drop to the end
_INLINE_CODE = re.compile(r"``[^`]*``|`[^`\n]*`")
_MASKED_LINK = re.compile(r"\[([^\]\n]+)\]\(\s*<?[^)\s]+>?\s*\)")
_URL = re.compile(r"<?(?:https?://|www\.)[^\s<>]*[^\s<>.,;:!?)'\"]>?", re.IGNORECASE)
_USER = re.compile(r"<@!?(\d+)>")
_ROLE = re.compile(r"<@&(\d+)>")
_CHANNEL = re.compile(r"<#(\d+)>")
_SLASH_COMMAND = re.compile(r"</([\w\- ]+):\d+>")
_CUSTOM_EMOJI = re.compile(r"<a?:\w+:\d+>")
_TIMESTAMP = re.compile(r"<t:-?\d+(?::[tTdDfFR])?>")
_EVERYONE = re.compile(r"@(everyone|here)\b")

# Pictographs, symbols, flags, keycaps, skin tones, joiners and variation selectors.
_EMOJI = re.compile(
    "["
    "\U0001F000-\U0001FAFF"  # mahjong .. symbols & pictographs ext-A (incl. flags, skin tones)
    "\U0001FC00-\U0001FFFF"
    "\u2600-\u27BF"  # misc symbols, dingbats
    "\u2300-\u23FF"  # technical (watch, hourglass, play buttons)
    "\u2B00-\u2BFF"  # arrows/stars (star, heavy circles)
    "\u2190-\u21FF"  # arrows
    "\u25A0-\u25FF"  # geometric shapes
    "\u3030\u303D\u3297\u3299\u00A9\u00AE\u2122\u2139\u203C\u2049"
    "\u200D\uFE0E\uFE0F\u20E3"  # zero-width joiner, variation selectors, keycap
    "\U000E0020-\U000E007F"  # tag characters (subdivision flags)
    "]+"
)

_HEADER = re.compile(r"^[ \t]*(?:#{1,3}|-#)[ \t]+", re.MULTILINE)
_QUOTE = re.compile(r"^[ \t]*>{1,3}[ \t]?", re.MULTILINE)
_BULLET = re.compile(r"^[ \t]*(?:[-*+•]|\d{1,3}[.)])[ \t]+", re.MULTILINE)
# Emphasis pairs: keep the words inside. Order matters (** before *, __ before _).
_EMPHASIS = [
    re.compile(r"\|\|(.+?)\|\|", re.DOTALL),  # spoiler
    re.compile(r"\*\*(.+?)\*\*", re.DOTALL),
    re.compile(r"__(.+?)__", re.DOTALL),
    re.compile(r"~~(.+?)~~", re.DOTALL),
    re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", re.DOTALL),
    re.compile(r"(?<![\w_])_(?!\s)(.+?)(?<!\s)_(?![\w_])", re.DOTALL),
]
_ESCAPE = re.compile(r"\\([\\*_~|`>#\-\[\]()])")
_LEFTOVER_MARKUP = re.compile(r"[*_~|`\\]+")
_SENTENCE_END = re.compile(r"[.!?…]$")
_NO_WORDS = re.compile(r"^\W*$")

# Sentence boundary: terminal punctuation (and closing quotes/brackets) then whitespace.
_SPLIT = re.compile(r"(?:(?<=[.!?…])|(?<=[.!?…][\"')\]]))\s+")
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st vs etc e.g i.e approx no fig ca".split()
)
_INITIALS = re.compile(r"^(?:[a-z]\.)+$")  # "p.m.", "u.s.", "j." (an initial)
_LONG_SENTENCE = 200
"""Sentences longer than this are split again at commas so the first clip starts soon."""


def resolve_mentions(text: str, names: NameLookup = None) -> str:
    """Replace Discord mention markup by names; unknown ids become a neutral word."""
    lookup = _as_lookup(names)

    def sub(default: str) -> Callable[[re.Match[str]], str]:
        def repl(match: re.Match[str]) -> str:
            name = lookup(match.group(1))
            return f" {name} " if name else f" {default} "

        return repl

    text = _USER.sub(sub("someone"), text)
    text = _ROLE.sub(sub("a role"), text)
    text = _CHANNEL.sub(sub("a channel"), text)
    text = _SLASH_COMMAND.sub(lambda m: f" {m.group(1)} ", text)
    return _EVERYONE.sub(r"\1", text)


def clean_text(raw: str, names: NameLookup = None, max_chars: int = 400, more: str = MORE) -> str:
    """Return the words to speak for ``raw`` (``""`` means nothing to say).

    Drops code, URLs, emoji and markup, names mentions via ``names`` and caps
    the result at ``max_chars`` (cut at a sentence or word, then "and more").
    """
    if not raw:
        return ""
    text = raw.replace("\r\n", "\n").replace("\r", "\n")
    text = _CODE_BLOCK.sub(" ", text)
    text = _INLINE_CODE.sub(" ", text)
    text = _MASKED_LINK.sub(r"\1", text)
    text = _URL.sub(" ", text)
    text = _TIMESTAMP.sub(" ", text)
    text = _CUSTOM_EMOJI.sub(" ", text)
    text = resolve_mentions(text, names)
    text = _EMOJI.sub(" ", text)
    text = _ESCAPE.sub(r"\1", text)
    text = _HEADER.sub("", text)
    text = _QUOTE.sub("", text)
    text = _BULLET.sub("", text)
    for pattern in _EMPHASIS:
        text = pattern.sub(r"\1", text)
    text = _LEFTOVER_MARKUP.sub(" ", text)
    text = _join_lines(text)
    if _NO_WORDS.match(text):
        return ""
    return cap_text(text, max_chars, more)


def cap_text(text: str, max_chars: int, more: str = MORE) -> str:
    """Cut ``text`` to at most ``max_chars`` characters, ending with "and more"."""
    if max_chars <= 0:
        raise ValueError("max_chars must be positive")
    if len(text) <= max_chars:
        return text
    room = max_chars - len(more) - 2  # ". " or " " before it, "." after
    if room <= 0:
        return text[:max_chars].rsplit(" ", 1)[0] if " " in text[:max_chars] else text[:max_chars]
    head = text[: room + 1]
    # Prefer whole sentences when that keeps at least half of the allowed text.
    kept = ""
    for sentence in _whole_sentences(text):
        candidate = f"{kept} {sentence}" if kept else sentence
        if len(candidate) > room:
            break
        kept = candidate
    if len(kept) >= room // 2 and _SENTENCE_END.search(kept):
        return f"{kept} {more[0].upper()}{more[1:]}."
    cut = head.rsplit(" ", 1)[0] if " " in head else head[:room]
    cut = cut.rstrip(" ,;:-–—")
    if _SENTENCE_END.search(cut):
        return f"{cut} {more[0].upper()}{more[1:]}."
    return f"{cut} {more}."


def split_sentences(text: str) -> list[str]:
    """Split cleaned text into sentences, in order, none empty.

    Abbreviations such as "Dr." do not end a sentence; very long sentences are
    split again at commas/semicolons so each clip stays short.
    """
    out: list[str] = []
    for sentence in _whole_sentences(text):
        out.extend(_split_long(sentence))
    return [s for s in out if s and not _NO_WORDS.match(s)]


def _whole_sentences(text: str) -> list[str]:
    pieces: list[str] = []
    current = ""
    for part in _SPLIT.split(text.strip()):
        if not part:
            continue
        current = f"{current} {part}" if current else part
        last_word = current.rsplit(" ", 1)[-1].lower()
        if current.endswith(".") and (
            last_word.rstrip(".") in _ABBREVIATIONS or _INITIALS.match(last_word)
        ):
            continue
        pieces.append(current.strip())
        current = ""
    if current:
        pieces.append(current.strip())
    return pieces


def chunk_text(text: str, max_chars: int) -> list[str]:
    """Split text into pieces of at most ``max_chars``: at sentences, then clauses, then words.

    Piper's memory grows with the length of one input (~20 MB per second of
    audio), so it is fed short pieces; a single word longer than the limit is
    left whole.
    """
    if max_chars <= 0:
        raise ValueError("max_chars must be positive")
    pieces: list[str] = []
    for sentence in _whole_sentences(text):
        pieces.extend(_split_long(sentence, max_chars))
    return [p for p in pieces if p and not _NO_WORDS.match(p)]


def _split_long(sentence: str, limit: int = _LONG_SENTENCE) -> list[str]:
    if len(sentence) <= limit:
        return [sentence]
    clauses = re.split(r"(?<=[,;:])\s+", sentence)
    if len(clauses) == 1:
        return _pack(sentence.split(), limit)
    parts: list[str] = []
    for clause in _pack(clauses, limit):
        parts.extend(_pack(clause.split(), limit) if len(clause) > limit else [clause])
    return parts


def _pack(items: list[str], limit: int) -> list[str]:
    """Join items with spaces greedily into strings of at most ``limit`` characters."""
    parts: list[str] = []
    current = ""
    for item in items:
        if current and len(current) + 1 + len(item) > limit:
            parts.append(current)
            current = item
        else:
            current = f"{current} {item}" if current else item
    if current:
        parts.append(current)
    return parts


def _join_lines(text: str) -> str:
    """Collapse whitespace; a line break ends a sentence so lists are read as items."""
    lines = [" ".join(line.split()) for line in text.split("\n")]
    lines = [line for line in lines if line and not _NO_WORDS.match(line)]
    out = []
    for i, line in enumerate(lines):
        if i < len(lines) - 1 and not re.search(r"[.!?…,;:]$", line):
            line += "."
        out.append(line)
    text = " ".join(out)
    text = re.sub(r"\s+([.,!?;:])", r"\1", text)  # "word ." left by removed emoji/links
    text = re.sub(r"([!?…])\.(?=\s|$)", r"\1", text)  # "Hi!." from line joining
    return text.strip()


def _as_lookup(names: NameLookup) -> Callable[[str], "str | None"]:
    if names is None:
        return lambda _id: None
    if callable(names):
        return names  # type: ignore[return-value]
    return lambda _id: names.get(_id) or names.get(int(_id))  # type: ignore[call-overload]
