"""Dataset-level checks: what's merely suspicious (warn) vs unusable (raise)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

from errors import Phrase

from .errors import DatasetError
from .types import Example


def text_key(text: str) -> str:
    """Normalised form used to spot duplicates regardless of case/spacing."""
    return " ".join(text.casefold().split())


def quality_warnings(examples: list[Example]) -> list[Phrase]:
    """Counts of duplicate rows and of texts given conflicting labels."""
    pair_counts = Counter((text_key(e.text), e.label) for e in examples)
    duplicates = sum(n - 1 for n in pair_counts.values() if n > 1)
    labels_by_text: dict[str, set[str | None]] = defaultdict(set)
    for key, label in pair_counts:
        labels_by_text[key].add(label)
    conflicts = sum(1 for labels in labels_by_text.values() if len(labels) > 1)
    warnings = []
    if duplicates:
        warnings.append(Phrase("{count} duplicate row(s) (same text and label).", count=duplicates))
    if conflicts:
        warnings.append(Phrase("{count} text(s) appear with conflicting labels.", count=conflicts))
    counts = Counter(e.label for e in examples if e.label is not None)
    if len(counts) == 1:
        warnings.append(Phrase("Only one class so far; add examples of at least one more class before training."))
    return warnings


def label_counts(examples: Iterable[Example]) -> Counter[str]:
    """How many examples each label has (unlabelled rows ignored)."""
    return Counter(e.label for e in examples if e.label is not None)


def require_trainable(examples: list[Example]) -> None:
    """Refuse data a classifier can't learn from, with advice on fixing it."""
    if not examples:
        raise DatasetError(Phrase("That dataset is empty. Add some examples first."))
    counts = label_counts(examples)
    if len(counts) < 2:
        only = next(iter(counts), "none")
        raise DatasetError(Phrase(
            "I need at least two classes (labels) to train, but this data only has `{only}`. "
            "Add examples of another class, e.g. a CSV with text,label columns.", only=only)
        )


def responses_by_label(examples: Iterable[Example]) -> dict[str, str]:
    """Most common response given for each label (labels without one omitted)."""
    seen: dict[str, Counter[str]] = defaultdict(Counter)
    for e in examples:
        if e.label is not None and e.response:
            seen[e.label][e.response] += 1
    return {label: c.most_common(1)[0][0] for label, c in seen.items()}
