"""Small generated datasets for the model's integration tests (no shared data needed)."""
from __future__ import annotations

import csv
import io
import itertools
import random

TOPICS = {
    "weather": (["is it going to rain", "how hot is it", "will it be sunny", "what's the forecast for",
                 "is there snow expected", "how windy is it"], ["today", "tomorrow", "this weekend", "in paris",
                                                                "tonight", "on monday"]),
    "food": (["recommend a restaurant", "what should i cook", "where can i get pizza", "i want sushi",
              "find me a good burger place", "what's for dinner"], ["nearby", "tonight", "for two",
                                                                   "downtown", "that is cheap", "please"]),
    "greeting": (["hello there", "hi bot", "good morning", "hey how are you", "greetings friend",
                  "nice to meet you"], ["", "!", " :)", " again", " everyone", " buddy"]),
}


def rows(seed: int = 0, per_class: int = 30) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    out = []
    for label, (stems, tails) in TOPICS.items():
        combos = list(itertools.product(stems, tails))
        rng.shuffle(combos)
        out += [(f"{s} {t}".strip(), label) for s, t in combos[:per_class]]
    rng.shuffle(out)
    return out


def csv_bytes(examples: list[tuple[str, str]], header=("text", "label")) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(examples)
    return buf.getvalue().encode()
