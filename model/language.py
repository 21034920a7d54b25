"""Which sentence encoder suits a dataset: the English one or the multilingual one.

Decided once per training from the texts alone (no labels, no model):

- the share of letters outside the Latin script (Cyrillic, Greek, Arabic, CJK...):
  at least ``NON_LATIN_SHARE`` of them means the data isn't English;
- for Latin-script data, the share of words that are common English function
  words ("the", "is", "you", "what"...): English data measured .26-.43
  (SMS spam .26, sentiment .33, the playground sample .39, CLINC150 .42),
  Spanish, German, French, Italian, Portuguese and Polish chat sentences of
  our own .00; below ``ENGLISH_WORD_SHARE`` the data gets the multilingual
  encoder.

The English encoder (all-MiniLM-L6-v2) reads English best and is what
every English figure in bench/model.py was measured with, so English data
keeps it; on Russian it made the model worse than TF-IDF alone (CEDR .736
against .769, bench/model.py --russian).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NON_LATIN_SHARE = 0.2
ENGLISH_WORD_SHARE = 0.1
# Words only English uses this often; none is a common word of the other languages measured
# ("in", "a", "me", "was", "will" and "so" are left out: they are words in German, Italian or Spanish too).
ENGLISH_WORDS = frozenset("""
the is are you your i i'm it it's this that what what's how of and to for my with be do does don't can
can't have has not on at an we they he she there here please will would should could just about from
""".split())
SAMPLE_ROWS = 5_000
SAMPLE_CHARS = 500  # of each sampled text: enough to tell, and long reviews stay cheap
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


def _latin(ch: str) -> bool:
    """Basic Latin, Latin-1, Latin Extended A/B and Additional (accented letters included)."""
    o = ord(ch)
    return o < 0x250 or 0x1E00 <= o < 0x1F00


@dataclass(frozen=True, slots=True)
class LanguageProfile:
    letters: int
    non_latin_share: float  # of letters
    words: int
    english_share: float  # of the Latin-script words

    @property
    def english(self) -> bool:
        if self.letters == 0:
            return True  # digits and symbols only: nothing to read, keep the default
        if self.non_latin_share >= NON_LATIN_SHARE:
            return False
        return self.words < 20 or self.english_share >= ENGLISH_WORD_SHARE

    def describe(self) -> str:
        return (f"{self.non_latin_share:.0%} of letters outside the Latin script, "
                f"{self.english_share:.0%} common English words")


def profile(texts: list[str], sample: int = SAMPLE_ROWS) -> LanguageProfile:
    """Letter and word shares over an evenly spaced sample of the texts."""
    step = max(1, len(texts) // sample)
    letters = non_latin = words = english = 0
    for text in texts[::step]:
        text = text[:SAMPLE_CHARS]
        for ch in text:
            if ch.isalpha():
                letters += 1
                non_latin += not _latin(ch)
        for word in _WORD.findall(text.casefold().replace("\u2019", "'")):
            if all(_latin(ch) for ch in word):
                words += 1
                english += word in ENGLISH_WORDS
    return LanguageProfile(letters, non_latin / letters if letters else 0.0, words,
                           english / words if words else 0.0)


def is_english(texts: list[str]) -> bool:
    return profile(texts).english
