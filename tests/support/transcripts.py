"""Transcript normalisation and word error rate.

Speech engines and human references disagree on surface form ("Mr." / "mister",
"1961" / "nineteen sixty one", "10%" / "ten percent"). Comparing them fairly
needs one canonical form: lower case, no punctuation, common abbreviations
spelled out, and every number written as digits, whichever way it came in.
Used by tests and benchmarks; the bot never shows this form to users.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["normalize_text", "wer", "word_errors", "number_to_words", "words_to_numbers"]

_UNITS = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
    "seventeen", "eighteen", "nineteen",
]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = [(10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (10**3, "thousand")]

_UNIT_VALUE = {w: i for i, w in enumerate(_UNITS)}
_TENS_VALUE = {w: i * 10 for i, w in enumerate(_TENS) if w}
_SCALE_VALUE = {w: v for v, w in _SCALES}

_ORDINAL_IRREGULAR = {
    "one": "first", "two": "second", "three": "third", "five": "fifth",
    "eight": "eighth", "nine": "ninth", "twelve": "twelfth",
}

# Spoken forms of common written abbreviations (as a speech engine writes them).
_ABBREVIATIONS = {
    "mr": "mister", "mrs": "missus", "ms": "miss", "dr": "doctor", "st": "saint",
    "prof": "professor", "jr": "junior", "sr": "senior", "vs": "versus",
    "etc": "etcetera", "ok": "okay", "capt": "captain", "gen": "general",
    "lt": "lieutenant", "sgt": "sergeant", "rev": "reverend", "gov": "governor",
}
_OUR_ROOTS = (
    "colo", "favo", "hono", "neighbo", "behavio", "labo", "humo", "flavo", "harbo",
    "rumo", "savo", "vapo", "armo", "endeavo", "odo", "splendo", "vigo",
)
_TRE_ROOTS = ("cent", "met", "theat", "lit", "fib", "calib", "somb", "kilomet", "centimet", "millimet")
_ISE_ROOTS = (
    "organ", "real", "recogn", "apolog", "critic", "emphas", "memor", "priorit", "summar",
    "custom", "optim", "final", "minim", "maxim", "author", "special", "normal", "standard",
    "visual", "util", "categor", "character", "symbol", "sympath", "modern", "personal",
)
_LL_ROOTS = ("travel", "cancel", "label", "model", "level", "fuel", "signal", "channel", "total")


def _british_to_american() -> dict[str, str]:
    """British spellings Whisper may pick (or a reference may use) -> American."""
    table = {
        "grey": "gray", "greys": "grays", "programme": "program", "programmes": "programs",
        "defence": "defense", "offence": "offense", "licence": "license", "catalogue": "catalog",
        "analogue": "analog", "analyse": "analyze", "analysed": "analyzed", "analysing": "analyzing",
        "paralyse": "paralyze", "paralysed": "paralyzed", "mum": "mom", "mums": "moms",
        "cheque": "check", "cheques": "checks", "jewellery": "jewelry", "tyre": "tire", "tyres": "tires",
        "aluminium": "aluminum", "pyjamas": "pajamas", "plough": "plow", "sceptical": "skeptical",
    }
    for root in _OUR_ROOTS:
        for suffix in ("", "s", "ed", "ing", "ite", "ites", "able", "ful", "er", "ers"):
            table[root + "ur" + suffix] = root + "r" + suffix
    for root in _TRE_ROOTS:
        for suffix in ("", "s", "d"):
            table[root + "re" + suffix] = root + "er" + suffix
    for root in _ISE_ROOTS:
        for suffix in ("e", "es", "ed", "ing", "ation", "ations"):
            table[root + "is" + suffix] = root + "iz" + suffix
    for root in _LL_ROOTS:
        for suffix in ("ed", "ing", "er", "ers"):
            table[root + "l" + suffix] = root + suffix
    return table


_SPELLING = _british_to_american()
_FILLERS = {"um", "umm", "uh", "uhh", "hmm", "mm", "mhm", "er", "erm", "ah"}
_SYMBOLS = {"%": " percent ", "&": " and ", "+": " plus ", "@": " at ", "=": " equals "}


def number_to_words(n: int, ordinal: bool = False) -> str:
    """Spell out a non-negative integer in English ("one thousand nine hundred sixty one")."""
    if n < 0:
        return "minus " + number_to_words(-n, ordinal)
    words = _cardinal_words(n)
    if ordinal:
        words[-1] = _ordinal_word(words[-1])
    return " ".join(words)


def _cardinal_words(n: int) -> list[str]:
    if n < 20:
        return [_UNITS[n]]
    if n < 100:
        tens, unit = divmod(n, 10)
        return [_TENS[tens]] + ([_UNITS[unit]] if unit else [])
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return [_UNITS[hundreds], "hundred"] + (_cardinal_words(rest) if rest else [])
    for value, name in _SCALES:
        if n >= value:
            high, rest = divmod(n, value)
            return _cardinal_words(high) + [name] + (_cardinal_words(rest) if rest else [])
    raise ValueError(f"number too large to spell: {n}")


def _ordinal_word(word: str) -> str:
    if word in _ORDINAL_IRREGULAR:
        return _ORDINAL_IRREGULAR[word]
    if word.endswith("y"):
        return word[:-1] + "ieth"
    return word + "th"


def words_to_numbers(tokens: list[str]) -> list[str]:
    """Replace runs of spelled-out cardinal numbers with digit strings.

    Handles compounds ("two hundred and five" -> "205"), year style
    ("nineteen sixty one" -> "1961", "nineteen oh five" -> "1905") and keeps
    digit sequences apart ("one two three" -> "1 2 3"). Ordinal words stay words.
    """
    spelled: list[str] = []
    for k, tok in enumerate(tokens):  # "7 million" -> "seven million", parsed below
        nxt = tokens[k + 1] if k + 1 < len(tokens) else ""
        if tok.isdigit() and int(tok) < 1000 and (nxt == "hundred" or nxt in _SCALE_VALUE):
            spelled.extend(_cardinal_words(int(tok)))
        else:
            spelled.append(tok)
    tokens = spelled
    out: list[str] = []
    i = 0
    while i < len(tokens):
        value, j = _parse_year(tokens, i)
        if value is None:
            value, j = _parse_cardinal(tokens, i)
        if value is None:
            out.append(tokens[i])
            i += 1
        else:
            out.append(str(value))
            i = j
    return out


def _small_number(tokens: list[str], i: int) -> tuple[int | None, int]:
    """Parse 1..99 written as a teen/unit or tens[-unit]; returns (value, next index)."""
    if i >= len(tokens):
        return None, i
    w = tokens[i]
    if w in _UNIT_VALUE:
        return _UNIT_VALUE[w], i + 1
    if w in _TENS_VALUE:
        if i + 1 < len(tokens) and tokens[i + 1] in _UNIT_VALUE and 0 < _UNIT_VALUE[tokens[i + 1]] < 10:
            return _TENS_VALUE[w] + _UNIT_VALUE[tokens[i + 1]], i + 2
        return _TENS_VALUE[w], i + 1
    return None, i


def _parse_year(tokens: list[str], i: int) -> tuple[int | None, int]:
    """Year style: a 13..20 part then a 10..99 part (or "oh" + digit), e.g. 1961, 2024, 1905.

    10..12 are left out: "ten thirty", "twelve fifteen" are far more often clock times.
    """
    first, j = _small_number(tokens, i)
    if first is None or not 13 <= first <= 20 or j >= len(tokens):
        return None, i
    if tokens[j] == "oh" and j + 1 < len(tokens) and 0 < _UNIT_VALUE.get(tokens[j + 1], 0) < 10:
        return first * 100 + _UNIT_VALUE[tokens[j + 1]], j + 2
    second, k = _small_number(tokens, j)
    if second is None or second < 10:
        return None, i
    if k < len(tokens) and (tokens[k] == "hundred" or tokens[k] in _SCALE_VALUE):
        return None, i  # "twenty five hundred" etc. is a plain cardinal
    return first * 100 + second, k


def _parse_cardinal(tokens: list[str], i: int) -> tuple[int | None, int]:
    """Parse a standard cardinal ("three thousand two hundred and one")."""
    total = 0
    current = 0
    last = None  # kind of the last consumed word
    prev_scale = None  # scales must fall: "two million three thousand"
    j = i
    while j < len(tokens):
        w = tokens[j]
        if w == "a" and last is None and j + 1 < len(tokens) and (
            tokens[j + 1] == "hundred" or tokens[j + 1] in _SCALE_VALUE
        ):
            current, last = 1, "unit"
        elif w in _UNIT_VALUE:
            v = _UNIT_VALUE[w]
            if last in ("unit", "teen"):
                break
            if last == "tens" and (v == 0 or v >= 10):
                break
            current += v
            last = "teen" if v >= 10 else "unit"
        elif w in _TENS_VALUE:
            if last in ("unit", "teen", "tens"):
                break
            current += _TENS_VALUE[w]
            last = "tens"
        elif w == "hundred":
            if last not in ("unit", "teen", "tens") or current % 100 == 0 or current >= 100:
                break
            current *= 100
            last = "hundred"
        elif w in _SCALE_VALUE:
            scale = _SCALE_VALUE[w]
            if last not in ("unit", "teen", "tens", "hundred") or (prev_scale and scale >= prev_scale):
                break
            total += current * scale
            current = 0
            last, prev_scale = "scale", scale
        elif w == "and" and last in ("hundred", "scale") and j + 1 < len(tokens) and (
            tokens[j + 1] in _UNIT_VALUE or tokens[j + 1] in _TENS_VALUE
        ):
            pass
        else:
            break
        j += 1
    if last is None:
        return None, i
    return total + current, j


def _spell_ordinal(match: re.Match) -> str:
    return " " + number_to_words(int(match.group(1)), ordinal=True) + " "


def normalize_text(text: str) -> str:
    """Canonical form for comparing transcripts: lower case, words, numbers as digits."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = text.replace("’", "'").replace("‘", "'")
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # 1,000 -> 1000
    text = re.sub(r"\b([ap])\.m\b\.?", r"\1m", text)  # p.m. -> pm
    # Clock times: "10:30", "at 3.30", "7.45 pm" -> "10 30" (said "ten thirty").
    text = re.sub(r"\b(\d{1,2}):(\d\d)\b", r"\1 \2", text)
    text = re.sub(r"\bat (\d{1,2})\.(\d\d)\b", r"at \1 \2", text)
    text = re.sub(r"\b(\d{1,2})\.(\d\d)(?=\s*(?:[ap]\.?m\b|o'?clock))", r"\1 \2", text)
    text = re.sub(r"(\d)\.(\d+)", lambda m: m.group(1) + " point " + " ".join(m.group(2)), text)
    text = re.sub(r"\$\s*(\d+)", lambda m: m.group(1) + (" dollar " if m.group(1) == "1" else " dollars "), text)
    text = re.sub(r"\b(\d+)(?:st|nd|rd|th)\b", _spell_ordinal, text)
    for symbol, spoken in _SYMBOLS.items():
        text = text.replace(symbol, spoken)
    text = re.sub(r"(?<=\w)'(?=\w)", "", text)  # don't -> dont
    text = re.sub(r"(?<=\d)(?=[a-z])|(?<=[a-z])(?=\d)", " ", text)  # 10km -> 10 km
    tokens = re.findall(r"[^\W_]+", text)
    tokens = [_SPELLING.get(t, t) for t in (_ABBREVIATIONS.get(t, t) for t in tokens if t not in _FILLERS)]
    tokens = [str(int(t)) if t.isdigit() and t.isascii() else t for t in tokens]
    return " ".join(words_to_numbers(tokens))


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(edits, reference word count) after normalising both texts."""
    ref = normalize_text(reference).split()
    hyp = normalize_text(hypothesis).split()
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1], len(ref)


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate of hypothesis against reference (0.0 is perfect).

    An empty reference scores 0.0 for an empty hypothesis and 1.0 otherwise.
    """
    edits, n = word_errors(reference, hypothesis)
    if n == 0:
        return 0.0 if edits == 0 else 1.0
    return edits / n
