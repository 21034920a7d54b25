"""Which language a reply is spoken in: the one it is written in.

The text decides the script: a reply mostly in Cyrillic letters is not read by an English
voice, whatever a setting says, and a Latin-script reply is not read by the Russian voice.
Within that script the server's or member's setting names the language when it can
("uk" for Ukrainian text, "de" for German); without one, Cyrillic text is Russian and the
rest is spoken in the operator's TTS_LANGUAGE. The letter shares come from the same profile
the text model uses to pick its encoder (``model.language``).
"""

from __future__ import annotations

from model.language import ENGLISH_WORD_SHARE, NON_LATIN_SHARE, profile

AUTO = "auto"
RUSSIAN = "ru"
# Languages written in Cyrillic (of those Whisper and Discord name), and in scripts other than
# Latin or Cyrillic; every other code is taken to be written in Latin letters.
CYRILLIC_LANGUAGES = frozenset("ru uk be bg mk sr kk ky mn tg tt ba".split())
OTHER_SCRIPT_LANGUAGES = frozenset(
    "am ar as bn bo el fa gu he hi hy ja ka km kn ko lo ml mr my ne pa ps sa sd si ta te th ur yi yue zh".split())


def _script(language: str) -> str:
    code = language.replace("_", "-").split("-", 1)[0].lower()
    if code in CYRILLIC_LANGUAGES:
        return "cyrillic"
    return "other" if code in OTHER_SCRIPT_LANGUAGES else "latin"


def _cyrillic_share(text: str) -> float:
    letters = [ch for ch in text if ch.isalpha()]
    return sum("\u0400" <= ch <= "\u04ff" for ch in letters) / len(letters) if letters else 0.0


def reply_language(text: str, setting: str | None = None, default: str = "en") -> str:
    """The language to speak ``text`` in.

    ``setting`` is the member's or server's language (None or "auto": none chosen);
    ``default`` is what Latin-script text without a setting is spoken in (TTS_LANGUAGE)."""
    chosen = setting if setting and setting != AUTO else None
    found = profile([text])
    if found.letters == 0:
        return chosen or default
    if found.non_latin_share >= NON_LATIN_SHARE:
        if _cyrillic_share(text) >= NON_LATIN_SHARE:
            return chosen if chosen and _script(chosen) == "cyrillic" else RUSSIAN
        return chosen if chosen and _script(chosen) == "other" else default
    if chosen and _script(chosen) == "latin":
        if found.english_share >= ENGLISH_WORD_SHARE and not chosen.startswith("en"):
            return default if default.startswith("en") else "en"  # a German server's English sentence
        return chosen
    return default
