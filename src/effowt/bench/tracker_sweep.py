"""``effowt bench tracker``: sweep the tracker's thresholds on a validation world.

The model's detections and embeddings of a frame do not depend on the tracker's
settings, so every frame of the world's videos goes through the model once; each
point of the grid then only re-runs :class:`~effowt.tracking.OnlineAssociator` on
the cached detections and is scored with TrackEval's TAO_OW (OWTA, D.Re, A.Acc for
known and unknown objects). Pick an operating point from the table and pass it to
``effowt track`` as ``tracker.KEY=VALUE``.

Output: ``tracker-sweep.json`` (grid, rows), ``tracker-sweep.md`` (table) and
``tracker-sweep.png`` (OWTA against D.Re, one marker per setting).
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from effowt.bench.output import METRIC_LABELS, METRICS, new_figure, write_outputs
from effowt.config import apply_values
from effowt.errors import ConfigError, DataError
from effowt.fileio import prepare_output_dir

if TYPE_CHECKING:
    import argparse

OUTPUTS = ("tracker-sweep.json", "tracker-sweep.md", "tracker-sweep.png")
DEFAULT_GRID: dict[str, list[Any]] = {"det_thresh": [0.1, 0.2, 0.3, 0.4],
                                      "init_thresh": [0.3, 0.5, 0.7]}
SUBSETS = ("known", "unknown")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", default=None, help="run folder (default: the shipped checkpoint)")
    parser.add_argument("--data", required=True, help="validation world: an `effowt synth` folder or a TAO json")
    parser.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                        help="tracker field and values to sweep (repeatable; default det_thresh x init_thresh)")
    parser.add_argument("--out", default="benchmarks/tracker", help="folder for tracker-sweep.json / .md / .png")
    parser.add_argument("--device", default="cpu")


def run(args: argparse.Namespace) -> dict[str, Any]:
    return run_tracker_sweep(args.weights, args.data, args.out, parse_grid(args.grid), args.device)


def parse_grid(items: list[str]) -> dict[str, list[Any]] | None:
    """``["det_thresh=0.2,0.3"]`` -> ``{"det_thresh": [0.2, 0.3]}`` (values parsed as YAML;
    keys may carry a ``tracker.`` prefix); None when empty."""
    import yaml

    grid = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not values:
            raise ConfigError(f"--grid {item!r} is not of the form KEY=V1,V2")
        grid[key.strip().removeprefix("tracker.")] = [yaml.safe_load(v) for v in values.split(",")]
    return grid or None


def world_json(data: str | Path) -> Path:
    """The TAO json of a validation world: an ``effowt synth`` folder's
    ``val/annotations.json``, or a TAO json given directly."""
    path = Path(data)
    candidate = path / "val" / "annotations.json" if path.is_dir() else path
    if not candidate.is_file():
        raise DataError(f"{data}: not an `effowt synth` folder (no val/annotations.json) or a TAO json")
    return candidate


def run_tracker_sweep(weights: str | Path | None, data: str | Path, out_dir: str | Path,
                      grid: dict[str, list[Any]] | None = None, device: str = "cpu") -> dict[str, Any]:
    """Sweep ``grid`` (tracker field -> values; default :data:`DEFAULT_GRID`) for the run
    ``weights`` (None: the shipped checkpoint) on the world ``data``; write the outputs
    into ``out_dir`` and return ``{"weights", "data", "grid", "rows": [{settings,
    known: {OWTA, DetRe, AssA}, unknown: {...}}]}``."""
    from effowt.data.sources import open_source
    from effowt.evaluation.owta import owta_report
    from effowt.tracking import OnlineAssociator, Tracker
    from effowt.tracking.writers import tao_records

    grid = dict(DEFAULT_GRID if grid is None else grid)
    gt_json = world_json(data)
    out = prepare_output_dir(out_dir)
    tracker = Tracker.from_pretrained(weights, device=device)
    bad = sorted(set(grid) - {f.name for f in dataclasses.fields(tracker.cfg)})
    if bad:
        raise ConfigError(f"bench tracker: unknown tracker field(s) {', '.join(bad)}")
    points = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    # every point checked as a tracker.KEY=VALUE override is, before the model runs once
    configs = [apply_values(tracker.cfg, settings, "tracker.") for settings in points]
    videos = []
    for video in open_source(gt_json):
        videos.append((video.video_id, [(frame.image_id, tracker.detect(frame.image)) for frame in video]))
    rows = []
    for settings, cfg in zip(points, configs):
        records = []
        for video_id, frames in videos:
            associator = OnlineAssociator(cfg)
            for image_id, (boxes, scores, embeddings) in frames:
                records += tao_records(associator.step(boxes, scores, embeddings), video_id, image_id)
        metrics, _ = owta_report(gt_json, records)  # no boxes at all score 0
        rows.append({"settings": settings, **{s: metrics[s] for s in SUBSETS}})
    report = {"weights": None if weights is None else str(weights), "data": str(gt_json), "grid": grid,
              "defaults": {k: getattr(tracker.cfg, k) for k in grid}, "rows": rows}
    write_outputs(out / OUTPUTS[0], report, markdown(report), {OUTPUTS[2]: plot_sweep(report)})
    return report


def markdown(report: dict[str, Any]) -> str:
    """One row per setting: OWTA / D.Re / A.Acc (percent) for known and unknown; the
    run's own setting is marked."""
    keys = list(report["grid"])
    head = "| " + " | ".join(keys) + " | " + " | ".join(f"{s} {m}" for s in SUBSETS for m in METRIC_LABELS) + " |"
    lines = [head, "|" + "---:|" * (len(keys) + 6)]
    for row in report["rows"]:
        mark = " (run's)" if row["settings"] == report["defaults"] else ""
        cells = [f"{row['settings'][k]}" for k in keys]
        cells[-1] += mark
        cells += [f"{100 * row[s][m]:.1f}" for s in SUBSETS for m in METRICS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_sweep(report: dict[str, Any]) -> Any:
    """OWTA against D.Re, one marker per setting (the run's own a star), known and unknown apart."""
    fig, _ = new_figure(9, 4)
    fig.clear()
    for ax, subset in zip(fig.subplots(1, 2), SUBSETS):
        for row in report["rows"]:
            x, y = 100 * row[subset]["DetRe"], 100 * row[subset]["OWTA"]
            own = row["settings"] == report["defaults"]
            ax.scatter([x], [y], marker="*" if own else "o", s=80 if own else 25)
            ax.annotate(" ".join(f"{v}" for v in row["settings"].values()), (x, y), fontsize=6)
        ax.set_title(f"{subset}: OWTA vs D.Re ({' / '.join(report['grid'])})")
        ax.set_xlabel("D.Re (%)")
        ax.set_ylabel("OWTA (%)")
    return fig
