"""Confusion-matrix PNGs rendered off-screen (Agg), without pyplot's global state."""

from __future__ import annotations

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

MAX_PLOT_CLASSES = 20


def _short(label: str, width: int = 18) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


def confusion_png(matrix: np.ndarray, labels: list[str], title: str) -> bytes:
    """Row = expected, column = predicted; counts written in each cell."""
    n = len(labels)
    side = min(14.0, max(4.5, 0.5 * n + 2.5))
    fig = Figure(figsize=(side, side), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(matrix, cmap="Blues", interpolation="nearest")
    ax.set_xticks(range(n), [_short(x) for x in labels], rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(n), [_short(x) for x in labels], fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("expected")
    ax.set_title(title, fontsize=10)
    top = matrix.max() if matrix.size else 0
    for i in range(n):
        for j in range(n):
            if matrix[i, j]:
                colour = "white" if matrix[i, j] > top / 2 else "black"
                ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=7, color=colour)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
