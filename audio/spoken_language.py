"""Which language a clip is heard in when the setting is ``auto``, and when to doubt a setting.

Whisper detects a language from the first 30 s of a clip, at the price of one more pass of
its encoder, and on a two-second phrase it is easily fooled (a Russian name heard as English).
A server mostly speaks one or two languages, so for ``auto`` the clip is first heard in the
server's usual language (its most frequent recent one, kept here in memory), and detection is
asked only when there is no usual language yet, or when the words come out unsure.  The same
doubt applies to a language someone chose: a member set to English who speaks Russian gets
unsure English words; a confident detection of another language is then heard instead.

Measured (bench/stt.py --guard, --languages): real speech in the right language scored a mean
log-probability of -0.15 to -0.59 (English, tiny.en and base) and -0.40 to -0.53 (Russian
crowd phrases, base); Russian heard as English -0.70 to -1.34; reversed speech (speech-like
noise) -0.86 to -1.14.  Detection was right and sure (.92-.96) on 4 of 6 Russian phrases.
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict, deque
from typing import Hashable

AUTO = "auto"  # the same word storage/languages.py stores: "detect it"

RECHECK = -0.6  # words less sure than this (mean log-probability): ask detection which language it is
OVERRIDE = 0.8  # a detection at least this sure of another language wins over the setting
CONFIDENT = 0.5  # a detection this sure (or sure words) makes the language the server's usual one

# Whisper told "ru" may still write English it hears in English (jfk's speech, sure at -0.41): words
# in the wrong script for the language are unsure words too.
CYRILLIC = frozenset("ru uk be bg sr mk kk ky tg tt ba mn".split())
LATIN = frozenset("en de es fr it pt nl pl cs sk sl hr bs ro hu sv da no nn fi et lv lt tr az id ms vi ca gl eu af "
                  "sq is cy mt sw tl la lb oc br ht ln yo sn so ha jw su".split())


def fits_script(text: str, language: str) -> bool:
    """Whether most letters of ``text`` are in ``language``'s script (Cyrillic or Latin; other
    languages, and text without letters, always fit)."""
    letters = [c for c in text if c.isalpha()]
    if not letters or language not in CYRILLIC | LATIN:
        return True
    cyrillic = sum("\u0400" <= c <= "\u04ff" for c in letters)
    latin = sum(c.isascii() or "\u00c0" <= c <= "\u024f" for c in letters)
    return cyrillic > latin if language in CYRILLIC else latin > cyrillic


class RecentLanguages:
    """The last ``keep`` languages known surely per scope (a server, a member's DMs).

    Thread-safe: recognition runs in worker threads."""

    def __init__(self, keep: int = 20, scopes: int = 10_000):
        self.keep = keep
        self.scopes = scopes
        self._recent: OrderedDict[Hashable, deque[str]] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, scope: Hashable, language: str) -> None:
        with self._lock:
            recent = self._recent.pop(scope, None) or deque(maxlen=self.keep)
            recent.append(language)
            self._recent[scope] = recent  # most recently used last
            while len(self._recent) > self.scopes:
                self._recent.popitem(last=False)

    def usual(self, scope: Hashable) -> str | None:
        """The scope's most frequent recent language (the latest of those tied), or None."""
        with self._lock:
            recent = list(self._recent.get(scope, ()))
        if not recent:
            return None
        counts = Counter(recent)
        best = max(counts.values())
        return next(lang for lang in reversed(recent) if counts[lang] == best)
