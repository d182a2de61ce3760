"""One experiment of the accuracy and ablation benchmarks: train on MiniOWT ``train/``,
track MiniOWT ``val/``, score it with the official TAO_OW OWTA.

Each experiment owns a folder. ``train.json`` (the trainer's efficiency report
and wall time) marks finished training, ``result.json`` (written last,
atomically) a finished experiment: neither step is ever re-run, and an
interrupted training resumes from its own checkpoint.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from effowt.bench.jobs import run_job
from effowt.config import EffOWTConfig, config_from_dict, to_dict
from effowt.data.miniowt import MiniOWTPaths
from effowt.fileio import atomic_write_json

RESULT_FILE = "result.json"
TRAIN_FILE = "train.json"


def run_experiment(cfg: EffOWTConfig, world: MiniOWTPaths, out_dir: str | Path, device: str = "cpu",
                   workers: int = 1) -> dict[str, Any]:
    """Train ``cfg`` on ``world``, track and score its val split; return (and write to
    ``out_dir/result.json``) ``{"known": {...}, "unknown": {...}, "all": {...},
    "trainable": int, "total": int, "peak_mem_bytes": int, "train_s": float}``."""
    from effowt.evaluation import evaluate_owta
    from effowt.tracking.pipeline import track_source
    from effowt.training.resume import has_checkpoint
    from effowt.training.trainer import train

    out = Path(out_dir)
    done = out / RESULT_FILE
    if done.is_file():
        return json.loads(done.read_text())
    run_dir, tracks_dir, trained = out / "run", out / "tracks", out / TRAIN_FILE
    if trained.is_file():
        report = json.loads(trained.read_text())
    else:
        start = time.perf_counter()
        report = train(cfg, world.train_json, world.train_images, run_dir, resume=has_checkpoint(run_dir),
                       device=device)
        report["train_s"] = time.perf_counter() - start
        atomic_write_json(trained, report)
    track_report = track_source(world.val_json, tracks_dir, run_dir=run_dir, device=device, workers=workers)
    if track_report.failed:
        names = ", ".join(o.name for o in track_report.failed)
        raise RuntimeError(f"{out}: tracking failed for {names}")
    if track_report.boxes:
        metrics = evaluate_owta(world.val_json, tracks_dir / "results.json")
    else:  # a model that detects nothing scores zero (TrackEval refuses an empty results file)
        metrics = {split: {"OWTA": 0.0, "DetRe": 0.0, "AssA": 0.0} for split in ("known", "unknown", "all")}
    result = {
        **metrics,
        "trainable": report["trainable"],
        "total": report["total"],
        "peak_mem_bytes": report["peak_mem_bytes"],
        "memory_kind": report["memory_kind"],
        "train_s": round(report["train_s"], 1),
        "track_frames_per_s": track_report.speed.get("frames_per_s"),
    }
    atomic_write_json(done, result)
    return result


def run_experiment_in_subprocess(cfg: EffOWTConfig, world: MiniOWTPaths, out_dir: str | Path, device: str = "cpu",
                                 workers: int = 1) -> dict[str, Any]:
    """:func:`run_experiment` in a fresh Python process, so that its peak memory
    (process RSS on CPU) belongs to this experiment alone and not to the runs
    before it; returns the same result."""
    out = Path(out_dir)
    done = out / RESULT_FILE
    if done.is_file():
        return json.loads(done.read_text())
    job = {"config": to_dict(cfg), "world": str(world.root), "out": str(out), "device": device, "workers": workers}
    return run_job("effowt.bench.experiment:experiment_job", job, f"experiment {out}")


def experiment_job(config: dict[str, Any], world: str, out: str, device: str, workers: int) -> dict[str, Any]:
    """:func:`run_experiment` with JSON arguments (the job a fresh process runs)."""
    cfg = config_from_dict(config, f"experiment job {out}")
    return run_experiment(cfg, MiniOWTPaths(Path(world)), out, device=device, workers=workers)
