"""One experiment of the accuracy and ablation benchmarks: train on a MiniOWT ``train/``
split, then track one or more TAO-format evaluation splits and score them with the
official TAO_OW OWTA, optionally at several points along training.

Each experiment owns a folder::

    out/run/                      the training run (checkpoints, snapshots; not committed)
    out/train.json                the trainer's efficiency report + wall time: training is done
    out/scores/<eval>-<step>.json the metrics of one evaluation split at one step
    out/tracks/                   scratch tracking output (not committed)

Every file is written atomically when its step is finished, and nothing finished is
ever re-run: an interrupted experiment resumes its training from its own checkpoint
and skips the scores it already has.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from effowt.bench import check_counts
from effowt.bench.jobs import run_job
from effowt.config import EffOWTConfig, config_from_dict, to_dict
from effowt.errors import EffOWTError
from effowt.fileio import atomic_write_json

if TYPE_CHECKING:
    from effowt.data.miniowt import MiniOWTPaths

RESULT_FILE = "result.json"
TRAIN_FILE = "train.json"
SPLITS = ("known", "unknown", "all")


@dataclass(frozen=True)
class Evaluation:
    """Score the run on ``gt_json`` (a TAO json) at each of ``steps`` (the last one
    is the end of training); ``name`` keys the scores."""

    name: str
    gt_json: Path
    steps: tuple[int, ...]


def _train(cfg: EffOWTConfig, world: MiniOWTPaths, out: Path, device: str) -> dict[str, Any]:
    import torch

    from effowt.training.resume import has_checkpoint
    from effowt.training.trainer import train

    trained, run_dir = out / TRAIN_FILE, out / "run"
    if trained.is_file():
        return json.loads(trained.read_text())
    # its train_s is the training loop's wall time, across resumes
    report = train(cfg, world.train_json, world.train_images, run_dir, resume=has_checkpoint(run_dir), device=device,
                   threads=torch.get_num_threads())  # the job's threads (see threads_per_job)
    atomic_write_json(trained, report)
    return report


def _weights_at(run_dir: Path, step: int, final_step: int, scratch: Path) -> Path:
    """A run folder whose ``last.safetensors`` holds the weights of ``step``: the run
    itself at its final step, else ``scratch`` with the run's config and the snapshot."""
    from effowt.runs import CONFIG_FILE, WEIGHTS_FILE, snapshot_file

    if step == final_step:
        if not (run_dir / WEIGHTS_FILE).is_file():
            raise EffOWTError(f"{run_dir}: no {WEIGHTS_FILE} although {TRAIN_FILE} beside it says training "
                              f"finished (the run folder is not committed); delete {TRAIN_FILE} to retrain")
        return run_dir
    snapshot = run_dir / snapshot_file(step)
    if not snapshot.is_file():
        raise EffOWTError(f"{run_dir}: no weights snapshot of step {step} ({snapshot.name}; set train.snapshot_every)")
    scratch.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(run_dir / CONFIG_FILE, scratch / CONFIG_FILE)
    shutil.copyfile(snapshot, scratch / WEIGHTS_FILE)
    return scratch


def score(run_dir: Path, gt_json: Path, tracks_dir: Path, device: str = "cpu", workers: int = 1) -> dict[str, Any]:
    """Track ``gt_json``'s videos with the model of ``run_dir`` and score them:
    ``{"known"|"unknown"|"all": {"OWTA", "DetRe", "AssA"}, "track_frames_per_s"}``."""
    from effowt.evaluation import evaluate_owta
    from effowt.tracking.pipeline import track_source

    if tracks_dir.exists():
        shutil.rmtree(tracks_dir)
    report = track_source(gt_json, tracks_dir, run_dir=run_dir, device=device, workers=workers)
    if report.failed:
        names = ", ".join(o.name for o in report.failed)
        raise EffOWTError(f"{run_dir}: tracking {gt_json} failed for {names}")
    metrics = evaluate_owta(gt_json, tracks_dir / "results.json")  # no boxes at all score 0
    return {**{split: metrics[split] for split in SPLITS}, "track_frames_per_s": report.speed.get("frames_per_s")}


def run_experiment(cfg: EffOWTConfig, world: MiniOWTPaths, out_dir: str | Path, evaluations: list[Evaluation],
                   device: str = "cpu", workers: int = 1) -> dict[str, Any]:
    """Train ``cfg`` on ``world``'s train split (once), score every evaluation at
    each of its steps (once each), write and return ``out_dir/result.json`` (which
    keeps the scores of earlier calls too):
    ``{"trainable", "total", "peak_mem_bytes", "memory_kind", "train_s",
    "scores": {eval name: {str(step): metrics}}}``."""
    out = Path(out_dir)
    report = _train(cfg, world, out, device)
    final_step = cfg.train.max_steps
    done = out / RESULT_FILE
    scores: dict[str, dict[str, Any]] = json.loads(done.read_text())["scores"] if done.is_file() else {}
    for ev in evaluations:
        scores.setdefault(ev.name, {})
        for step in ev.steps:
            path = out / "scores" / f"{ev.name}-{step:06d}.json"
            if not path.is_file():
                run_dir = _weights_at(out / "run", step, final_step, out / "snapshot")
                atomic_write_json(path, score(run_dir, ev.gt_json, out / "tracks", device, workers))
            scores[ev.name][str(step)] = json.loads(path.read_text())
    result = {
        "trainable": report["trainable"],
        "total": report["total"],
        "peak_mem_bytes": report["peak_mem_bytes"],
        "memory_kind": report["memory_kind"],
        "train_s": report["train_s"],
        "scores": scores,
    }
    atomic_write_json(done, result)
    return result


def threads_per_job(jobs: int, threads: int | None = None) -> int | None:
    """Intra-op threads of each of ``jobs`` experiments side by side on this CPU:
    ``threads`` when given (``--threads``), else the usable cores divided among the jobs
    (``None``: one experiment, torch's default); ConfigError for ``jobs < 1``."""
    from effowt.threads import usable_cores

    check_counts(("--jobs", jobs, 1))
    if threads is not None:
        return threads
    return max(1, usable_cores() // jobs) if jobs > 1 else None


def run_side_by_side(tasks: list[Callable[[], dict[str, Any]]], jobs: int) -> list[dict[str, Any]]:
    """Run independent experiments, ``jobs`` at a time; results in task order."""
    if jobs == 1:
        return [task() for task in tasks]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(lambda task: task(), tasks))


def run_experiment_in_subprocess(cfg: EffOWTConfig, world: MiniOWTPaths, out_dir: str | Path,
                                 evaluations: list[Evaluation],
                                 device: str = "cpu", workers: int = 1, threads: int | None = None) -> dict[str, Any]:
    """:func:`run_experiment` in a fresh Python process, so that its peak memory
    (process RSS on CPU) belongs to this experiment alone and not to the runs
    before it; returns the same result. A ``result.json`` that already holds every
    asked score is returned without starting a process. ``threads`` caps the
    process's intra-op threads (several experiments side by side on one CPU)."""
    out = Path(out_dir)
    done = out / RESULT_FILE
    if done.is_file():
        result = json.loads(done.read_text())
        if all(str(step) in result["scores"].get(e.name, {}) for e in evaluations for step in e.steps):
            return result
    job = {
        "config": to_dict(cfg),
        "world": str(world.root),
        "out": str(out),
        "evaluations": [{"name": e.name, "gt_json": str(e.gt_json), "steps": list(e.steps)} for e in evaluations],
        "device": device,
        "workers": workers,
        "threads": threads,
    }
    return run_job("effowt_paper.experiment:experiment_job", job, f"experiment {out}")


def experiment_job(config: dict[str, Any], world: str, out: str, evaluations: list[dict[str, Any]], device: str,
                   workers: int, threads: int | None) -> dict[str, Any]:
    """:func:`run_experiment` with JSON arguments (the job a fresh process runs)."""
    from effowt.data.miniowt import MiniOWTPaths

    if threads:
        import torch

        torch.set_num_threads(threads)
    evals = [Evaluation(e["name"], Path(e["gt_json"]), tuple(e["steps"])) for e in evaluations]
    cfg = config_from_dict(config, f"experiment job {out}")
    return run_experiment(cfg, MiniOWTPaths(Path(world)), out, evals, device=device, workers=workers)
