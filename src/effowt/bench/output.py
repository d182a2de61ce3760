"""What every benchmark report is made of: Markdown tables, figures, and the
``NAME.json`` + ``NAME.md`` pair; the tracking metrics' names come from
:data:`effowt.evaluation.owta.METRICS`, defined once there."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from effowt.evaluation.owta import METRICS
from effowt.fileio import atomic_save_figure, atomic_write_json, atomic_write_text

METRIC_LABELS = ("OWTA", "D.Re", "A.Acc")
"""The paper's names of :data:`METRICS`, in the same order (table headers)."""

__all__ = ["METRICS", "METRIC_LABELS", "markdown_table", "mean_std", "new_figure", "save_figure", "write_report"]


def mean_std(values: list[float]) -> dict[str, float]:
    """``{"mean", "std"}`` of ``values`` over seeds: the sample standard deviation, 0 for one value."""
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Lines of a Markdown table: the first column left-aligned, the others (numbers) right."""
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def write_report(out_dir: str | Path, name: str, report: dict[str, Any], markdown: str) -> None:
    """Write ``out_dir/NAME.json`` (the report) and ``out_dir/NAME.md``, atomically."""
    out = Path(out_dir)
    atomic_write_json(out / f"{name}.json", report)
    atomic_write_text(out / f"{name}.md", markdown)


def new_figure(width: float, height: float) -> tuple[Any, Any]:
    """A pyplot-free matplotlib ``(Figure, Axes)`` of ``width x height`` inches."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(1, 1, 1)


def save_figure(fig: Any, path: str | Path) -> None:
    """Lay ``fig`` out tightly and write it as a PNG (120 dpi), atomically."""
    fig.tight_layout()
    atomic_save_figure(fig, path, dpi=120)
