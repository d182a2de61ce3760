"""``effowt bench accuracy --world mini``: the four transfer modes on equal terms.

Each mode (``side``, ``head``, ``full``, ``lora``) is trained with the same data,
step budget and seed on top of the tiny pretrained VLM, then tracks the MiniOWT
val split and is scored with TrackEval's TAO_OW OWTA for known and unknown
categories. Output: ``accuracy.json``, ``accuracy.md`` and ``accuracy.png``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from effowt.bench.experiment import run_experiment_in_subprocess
from effowt.bench.world import ensure_world, world_config
from effowt.config import TRANSFER_MODES, apply_overrides, to_dict
from effowt.errors import ConfigError
from effowt.fileio import atomic_save_figure, atomic_write_json, atomic_write_text

METRICS = ("OWTA", "DetRe", "AssA")


def run_accuracy(out_dir: str | Path, modes: list[str], budget: int, seed: int = 0, data: str | Path | None = None,
                 device: str = "cpu", workers: int = 1, overrides: list[str] = ()) -> dict[str, Any]:
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
        print(f"[accuracy] mode {mode}: training {budget} steps, tracking, scoring", flush=True)
        result = run_experiment_in_subprocess(cfg, world, out / "modes" / mode, device=device, workers=workers)
        report["modes"][mode] = {k: result[k] for k in ("known", "unknown", "all", "trainable", "total", "peak_mem_bytes", "memory_kind", "train_s")}
    report["config"] = to_dict(base)
    atomic_write_json(out / "accuracy.json", report)
    atomic_write_text(out / "accuracy.md", accuracy_markdown(report))
    plot_accuracy(report, out / "accuracy.png")
    return report


def accuracy_markdown(report: dict[str, Any]) -> str:
    """One row per mode: OWTA / D.Re / A.Acc (%) for known and unknown, cost columns."""
    s = report["setup"]
    full = report["modes"].get("full", {}).get("trainable")
    lines = [
        f"# Transfer modes on MiniOWT ({s['backbone']}, {s['budget_steps']} steps, seed {s['seed']}, {s['device']})",
        "",
        "| mode | known OWTA | known D.Re | known A.Acc | unknown OWTA | unknown D.Re | unknown A.Acc | trainable | % of full | peak mem (MiB) | train (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for mode, m in report["modes"].items():
        cells = [f"{100 * m[split][k]:.1f}" for split in ("known", "unknown") for k in METRICS]
        pct = f"{100 * m['trainable'] / full:.2f}" if full else "-"
        lines.append(f"| {mode} | " + " | ".join(cells) + f" | {m['trainable']:,} | {pct} | {m['peak_mem_bytes'] / 2**20:.0f} | {m['train_s']:.0f} |")
    return "\n".join(lines) + "\n"


def plot_accuracy(report: dict[str, Any], path: Path) -> None:
    """Grouped bars: OWTA for known and unknown per mode."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    modes = list(report["modes"])
    fig = Figure(figsize=(6, 3.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.38
    for offset, split in ((-width / 2, "known"), (width / 2, "unknown")):
        values = [100 * report["modes"][m][split]["OWTA"] for m in modes]
        bars = ax.bar([i + offset for i in range(len(modes))], values, width, label=split)
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.set_xticks(range(len(modes)), modes)
    ax.set_ylabel("OWTA (%)")
    ax.set_title(f"MiniOWT, {report['setup']['budget_steps']} steps")
    ax.legend()
    fig.tight_layout()
    atomic_save_figure(fig, path, dpi=120)
