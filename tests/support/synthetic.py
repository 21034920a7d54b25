"""Deterministic intent-like datasets for tests and the benchmark.

Real chat datasets can't live in the repo, so we generate short utterances:
each intent has its own keywords, mixed with shared filler words, typos
and (optionally) keywords borrowed from other intents to make it harder.
"""

from __future__ import annotations

import random

_SYLLABLES = (
    "ka", "lo", "mi", "ne", "ru", "ta", "vo", "zi", "pe", "sa", "do", "fu",
    "gi", "ha", "ju", "be", "co", "xa", "ye", "wu", "ri", "mo", "te", "la",
)
_OPENERS = (
    "can you", "please", "i want to", "how do i", "help me", "could you",
    "i need to", "is it possible to", "tell me how to", "", "hey", "quick question",
)


def intent_dataset(
    n_rows: int,
    n_classes: int,
    seed: int = 0,
    confusion: float = 0.0,
    typo_rate: float = 0.2,
    sample_seed: int | None = None,
) -> tuple[list[str], list[str]]:
    """``n_rows`` (text, label) pairs spread evenly over ``n_classes`` intents.

    ``seed`` fixes the task (vocabulary); ``sample_seed`` draws a fresh
    sample of the same task, e.g. a test set. ``confusion`` is the chance
    that a keyword comes from a random other intent, capping accuracy.
    """
    rng = random.Random(seed)

    def word() -> str:
        return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4)))

    filler = [word() for _ in range(300)]
    keywords = [[word() for _ in range(6)] for _ in range(n_classes)]
    if sample_seed is not None:
        rng = random.Random(f"{seed}/{sample_seed}")
    texts, labels = [], []
    for i in range(n_rows):
        cls = i % n_classes
        words = []
        for _ in range(rng.randint(1, 3)):
            source = rng.randrange(n_classes) if rng.random() < confusion else cls
            words.append(rng.choice(keywords[source]))
        words += rng.sample(filler, rng.randint(2, 6))
        rng.shuffle(words)
        text = (rng.choice(_OPENERS) + " " + " ".join(words)).strip()
        if rng.random() < typo_rate:
            j = rng.randrange(len(text))
            text = text[:j] + text[j + 1 :]
        texts.append(text)
        labels.append(f"intent_{cls:03d}")
    return texts, labels


def sentiment_dataset(n_rows: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Small English positive/negative reviews with some ambiguous ones."""
    rng = random.Random(seed)
    good = ["great", "excellent", "love", "amazing", "perfect", "nice", "happy with", "recommend"]
    bad = ["awful", "terrible", "hate", "broken", "worst", "poor", "disappointed by", "returned"]
    things = ["this phone", "the battery", "the service", "this product", "the screen", "the case", "delivery"]
    texts, labels = [], []
    for i in range(n_rows):
        positive = i % 2 == 0
        words = good if positive else bad
        if rng.random() < 0.1:  # ambiguous review: mixed words
            words = good + bad
        text = f"{rng.choice(things)} is {rng.choice(words)}"
        if rng.random() < 0.5:
            text += f", {rng.choice(['really', 'so', 'very', 'quite'])} {rng.choice(words)}"
        texts.append(text)
        labels.append("positive" if positive else "negative")
    return texts, labels
