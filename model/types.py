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
    """Best label for a message; ``reply`` is the mapped response or the label.

    ``abstain`` is the one "I don't know" every caller obeys (chat, voice,
    the Transcribe menu; ``!test`` applies the same rule to its rows): see
    ``hybrid.decide_rows``. ``confidence`` is the calibrated probability of
    the label, ``certainty`` what the learned threshold compares.
    """

    label: str
    confidence: float
    reply: str
    abstain: bool = False
    threshold: float | None = None  # the learned threshold; None for models trained before it existed
    certainty: float | None = None


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
    rows: int = 0  # rows evaluated
    rows_given: int = 0  # rows in the upload (more than ``rows`` when a row cap cut it)
    # Only when the labelled data has out-of-scope rows (see model.oos):
    in_scope_accuracy: float | None = None
    oos_recall: float | None = None
    abstention_rate: float | None = None


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
