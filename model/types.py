"""Plain data records shared by the model package and its callers."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Example:
    """One row of a dataset; label is None for unlabelled evaluation data."""

    text: str
    label: str | None
    response: str | None = None


@dataclass(slots=True)
class DatasetInfo:
    """Summary of a stored dataset, small enough to show in chat."""

    name: str
    rows: int
    classes: int
    warnings: list[str] = field(default_factory=list)
    shared: bool = False
    labels: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Prediction:
    """Best label for a message; ``reply`` is the mapped response or the label."""

    label: str
    confidence: float
    reply: str


@dataclass(slots=True)
class EvalReport:
    """Result of ``!test``: text for chat plus optional attachments."""

    text: str
    png: bytes | None = None
    csv: bytes | None = None
    misclassified: list[tuple[str, str, str]] = field(default_factory=list)
    accuracy: float | None = None
    macro_f1: float | None = None
    labelled: bool = False
    rows: int = 0


@dataclass(frozen=True, slots=True)
class JobStatus:
    """One progress update of a training job."""

    job_id: str
    state: str  # "queued" | "training" | "finished" | "failed"
    message: str
    finished: bool = False
    accuracy: float | None = None
    macro_f1: float | None = None
    seconds: float | None = None
