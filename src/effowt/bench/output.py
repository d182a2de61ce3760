"""What every benchmark report is made of (Markdown tables, figures) and the one writer
of its files, :func:`write_outputs`; the tracking metrics' names come from
:data:`effowt.evaluation.owta.METRICS`, defined once there."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from effowt.evaluation.owta import METRICS
from effowt.fileio import atomic_save_figure, atomic_write_json, atomic_write_text

FIGURE_DPI = 120

METRIC_LABELS = ("OWTA", "D.Re", "A.Acc")
"""The paper's names of :data:`METRICS`, in the same order (table headers)."""

__all__ = ["METRICS", "METRIC_LABELS", "difference", "markdown_table", "mean_std", "new_figure", "percent",
           "write_outputs"]


def mean_std(values: list[float]) -> dict[str, float]:
    """``{"mean", "std"}`` of ``values`` over seeds: the sample standard deviation, 0 for one value."""
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def percent(stat: dict[str, float], spread: bool = True) -> str:
    """A :func:`mean_std` as ``mean ± std`` in %, or the mean alone (``spread=False``:
    one seed, no spread to show)."""
    return f"{100 * stat['mean']:.1f}" + (f" ± {100 * stat['std']:.1f}" if spread else "")


def difference(a: dict[str, float], b: dict[str, float]) -> tuple[float, float, bool]:
    """``(a - b, spread, shown)`` of two :func:`mean_std`: the spread is the two standard
    deviations together, and a difference is *shown* only where it exceeds them (the
    benchmarks' rule for making a claim)."""
    diff, spread = a["mean"] - b["mean"], a["std"] + b["std"]
    return diff, spread, abs(diff) > spread


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Lines of a Markdown table: the first column left-aligned, the others (numbers) right."""
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def write_outputs(json_path: str | Path, report: dict[str, Any], markdown: str | None = None,
                  figures: dict[str, Any] | None = None) -> list[Path]:
    """Write ``report`` to ``json_path``, ``markdown`` beside it (same name, ``.md``) and
    each ``{file name: Figure}`` of ``figures`` into the same folder (PNG), each file
    atomically; returns the paths written, in that order. Every benchmark writes
    through here: ``--json FILE``, ``--out DIR`` and the reports rewritten as runs finish."""
    path = Path(json_path)
    atomic_write_json(path, report)
    written = [path]
    if markdown is not None:
        written.append(path.with_suffix(".md"))
        atomic_write_text(written[-1], markdown)
    for name, fig in (figures or {}).items():
        written.append(path.parent / name)
        atomic_save_figure(fig, written[-1], dpi=FIGURE_DPI)
    return written


def wrote_line(paths: list[Path]) -> str:
    """``wrote DIR/NAME.json, NAME.md, ...``: what a benchmark prints after its table."""
    return f"wrote {paths[0]}, " + ", ".join(p.name for p in paths[1:])


def new_figure(width: float, height: float) -> tuple[Any, Any]:
    """A pyplot-free matplotlib ``(Figure, Axes)`` of ``width x height`` inches, laid out
    so that rotated tick labels and long titles stay inside it."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(1, 1, 1)
