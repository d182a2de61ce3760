"""``effowt bench accuracy --world mini``: the four transfer modes on equal terms.

Each mode (``side``, ``head``, ``full``, ``lora``) is trained with the same data,
step budget and seed on top of the tiny pretrained VLM, then tracks the MiniOWT
val split and is scored with TrackEval's TAO_OW OWTA for known and unknown
categories. Output: ``accuracy.json``, ``accuracy.md`` and ``accuracy.png``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from effowt.bench.experiment import run_experiment_in_subprocess
from effowt.bench.report import METRIC_LABELS, METRICS, markdown_table, new_figure, save_figure, write_report
from effowt.bench.world import ensure_world, world_config
from effowt.config import TRANSFER_MODES, apply_overrides, to_dict
from effowt.errors import ConfigError

logger = logging.getLogger(__name__)


def run_accuracy(out_dir: str | Path, *, modes: list[str], budget: int, seed: int = 0, data: str | Path | None = None,
                 device: str = "cpu", workers: int = 1, overrides: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """Train, track and score every mode; finished modes are kept and not re-run."""
    unknown = [m for m in modes if m not in TRANSFER_MODES]
    if unknown:
        raise ConfigError(f"unknown mode(s) {unknown}; choose from {list(TRANSFER_MODES)}")
    out = Path(out_dir)
    world = ensure_world(out / "world", data)
    base = world_config(budget, seed, overrides)
    report: dict[str, Any] = {
        "setup": {"world": str(world.root), "budget_steps": budget, "seed": seed, "device": device,
                  "backbone": base.model.backbone.name, "overrides": list(overrides)},
        "modes": {},
    }
    for mode in modes:
        cfg = apply_overrides(base, [f"model.mode={mode}"])
        logger.info("[accuracy] mode %s: training %d steps, tracking, scoring", mode, budget)
        result = run_experiment_in_subprocess(cfg, world, out / "modes" / mode, device=device, workers=workers)
        keys = ("known", "unknown", "all", "trainable", "total", "peak_mem_bytes", "memory_kind", "train_s")
        report["modes"][mode] = {k: result[k] for k in keys}
    report["config"] = to_dict(base)
    write_report(out, "accuracy", report, accuracy_markdown(report))
    plot_accuracy(report, out / "accuracy.png")
    return report


def accuracy_markdown(report: dict[str, Any]) -> str:
    """One row per mode: OWTA / D.Re / A.Acc (%) for known and unknown, cost columns."""
    s = report["setup"]
    full = report["modes"].get("full", {}).get("trainable")
    rows = [
        [mode, *[f"{100 * m[split][k]:.1f}" for split in ("known", "unknown") for k in METRICS], f"{m['trainable']:,}",
         f"{100 * m['trainable'] / full:.2f}" if full else "-", f"{m['peak_mem_bytes'] / 2**20:.0f}",
         f"{m['train_s']:.0f}"]
        for mode, m in report["modes"].items()
    ]
    header = ["mode", *[f"{split} {name}" for split in ("known", "unknown") for name in METRIC_LABELS],
              "trainable", "% of full", "peak mem (MiB)", "train (s)"]
    title = f"# Transfer modes on MiniOWT ({s['backbone']}, {s['budget_steps']} steps, seed {s['seed']}, {s['device']})"
    return "\n".join([title, "", *markdown_table(header, rows)]) + "\n"


def plot_accuracy(report: dict[str, Any], path: Path) -> None:
    """Grouped bars: OWTA for known and unknown per mode."""
    modes = list(report["modes"])
    fig, ax = new_figure(6, 3.5)
    width = 0.38
    for offset, split in ((-width / 2, "known"), (width / 2, "unknown")):
        values = [100 * report["modes"][m][split]["OWTA"] for m in modes]
        bars = ax.bar([i + offset for i in range(len(modes))], values, width, label=split)
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.set_xticks(range(len(modes)), modes)
    ax.set_ylabel("OWTA (%)")
    ax.set_title(f"MiniOWT, {report['setup']['budget_steps']} steps")
    ax.legend()
    save_figure(fig, path)
