"""The hallucination guard: what Whisper wrote only when it was not hearing speech is dropped.

Given noise, room tone or speech it can't follow, Whisper still writes *something*, often a
stock line from the subtitles it was trained on ("Thank you for watching", "Продолжение
следует…").  Each segment faster-whisper returns carries the signals to tell: the probability
that the window held no speech, the mean log-probability of its words (how sure the decoder
was) and the compression ratio of its text (a loop repeats itself).  Whisper's own rule skips a
window only when both no-speech is likely *and* the words are unsure; the guard adds the cases
seen here (bench/stt.py --guard): a loop, words the decoder was very unsure of, and a stock line
written without confidence.  A clip with nothing left raises NoSpeech upstream ("I couldn't hear
any speech").  Pure functions over the segments: tested without a model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Protocol

# Measured (bench/stt.py --guard): noise of every colour, hum, clicks and silence never reach these
# rules (the VAD keeps none of them). What does: real speech (-0.15 to -0.59 mean log-probability;
# short synthetic phrases down to -0.96), speech in another language than the one asked (-0.70 to
# -1.34: audio.spoken_language rechecks those), speech-like noise (reversed speech, -0.86 to -1.14:
# it still comes out as words), and synthetic speech Whisper could not follow (-1.25 to -2.3).
MIN_SPEECH_SECONDS = 0.3  # less voice than this after the VAD: a click, a breath
NO_SPEECH = 0.5  # with UNSURE: Whisper's own rule, a little stricter (its defaults are .6 and -1.0)
UNSURE = -0.8
VERY_UNSURE = -1.2  # below every real phrase heard here (short synthetic ones too): words Whisper could not follow
MAX_COMPRESSION = 2.4  # Whisper's own limit for a repetition loop
LOOP_REPEATS = 4  # the same words this many times in a row within one segment: a loop
STOCK_UNSURE = -0.5  # a stock subtitle line is kept only when written at least this surely

# Lines Whisper writes from its subtitle training data when it hears no speech (lower case,
# punctuation stripped; compared after the same normalisation).
STOCK_LINES = (
    "thank you for watching", "thanks for watching", "thank you for watching and see you next time",
    "thank you very much for watching", "thank you so much for watching", "please subscribe",
    "subscribe to the channel", "like and subscribe", "see you in the next video", "thank you",
    "you", "bye", "subtitles by the amara org community",
    "продолжение следует", "спасибо за просмотр", "субтитры сделал dimatorzok", "субтитры создавал dimatorzok",
    "редактор субтитров а синецкая корректор а кулакова", "подписывайтесь на канал", "спасибо",
    "vielen dank fürs zuschauen", "untertitel der amara org community", "untertitel im auftrag des zdf",
    "gracias por ver el video", "subtítulos realizados por la comunidad de amara org",
    "sous titres réalisés para la communauté d amara org", "merci d avoir regardé cette vidéo",
)


class Segment(Protocol):
    """What the guard reads of a faster-whisper segment."""

    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float


@dataclass(frozen=True)
class Verdict:
    """One segment judged: kept, or why not."""

    text: str
    kept: bool
    reason: str = ""


def plain(text: str) -> str:
    """Lower case, letters and digits only, single spaces: how stock lines are compared."""
    return " ".join(re.sub(r"[^\w]+", " ", text.lower()).split())


_STOCK = frozenset(plain(line) for line in STOCK_LINES)


def repeats_itself(text: str, times: int = LOOP_REPEATS) -> bool:
    """Whether some run of one to four words comes ``times`` times in a row ("the the the the")."""
    words = plain(text).split()
    for size in range(1, 5):
        for start in range(len(words) - size * times + 1):
            gram = words[start:start + size]
            if all(words[start + k * size:start + (k + 1) * size] == gram for k in range(1, times)):
                return True
    return False


def judge(segment: Segment) -> Verdict:
    text = segment.text.strip()
    if not plain(text):
        return Verdict(text, False, "empty")
    # Whisper computes the ratio over its whole 30 s window: a member who really says one sentence
    # three times gets it too, so a loop must also repeat within the segment or be written unsurely.
    if segment.compression_ratio > MAX_COMPRESSION and (repeats_itself(text) or segment.avg_logprob < UNSURE):
        return Verdict(text, False, f"a loop (compression {segment.compression_ratio:.1f})")
    if segment.no_speech_prob > NO_SPEECH and segment.avg_logprob < UNSURE:
        return Verdict(text, False, f"no speech ({segment.no_speech_prob:.2f}, {segment.avg_logprob:.2f})")
    if segment.avg_logprob < VERY_UNSURE:
        return Verdict(text, False, f"very unsure ({segment.avg_logprob:.2f})")
    if plain(text) in _STOCK and segment.avg_logprob < STOCK_UNSURE:
        return Verdict(text, False, f"a stock line written unsurely ({segment.avg_logprob:.2f})")
    return Verdict(text, True)


def speech_in(segments: Iterable[Segment], speech_seconds: float) -> tuple[str, list[Verdict], float | None]:
    """The text of the segments that hold speech ("" when none does), every verdict, and the mean
    log-probability of all the words Whisper wrote (None when it wrote none): how sure it was.

    ``speech_seconds``: how much of the clip the VAD kept as voice."""
    if speech_seconds < MIN_SPEECH_SECONDS:
        return "", [], None  # not even decoded: the segments are lazy
    segments = [s for s in segments if plain(s.text)]
    verdicts = [judge(s) for s in segments]
    logprob = sum(s.avg_logprob for s in segments) / len(segments) if segments else None
    return " ".join(v.text for v in verdicts if v.kept).strip(), verdicts, logprob
