"""``effowt train --dry-run``: everything a run would do, resolved but not run.

A cluster job that fails after the queue on a typo, a wrong path or a batch that
does not split is expensive. The dry run resolves the config, builds the model on
the ``meta`` device (shapes, no storage, no weights read) and reports what the
run would be: trainable and total parameters, the batch per process for the
current ``WORLD_SIZE``, steps, images seen and epochs of the given set, the
learning rate of every AdamW group at the points of the schedule where it
changes, and the files the run writes. It reads the annotation json (to count
its images) but opens no image and no weight file: it only checks that the
paths exist. It writes nothing.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from effowt.backbones.weights import weights_problem
from effowt.config import EffOWTConfig, TrainConfig
from effowt.distributed import env_world_size
from effowt.fileio import writable_parent
from effowt.models.params import build_for_counting, count_parameters
from effowt.runs import CONFIG_FILE, WEIGHTS_FILE
from effowt.training.optim import lr_factor, param_groups, per_process_batch
from effowt.training.resume import STATE_FILE, has_checkpoint
from effowt.training.trainer import EFFICIENCY_FILE, LOSS_PLOT_FILE, METRICS_FILE


def schedule_points(cfg: TrainConfig) -> list[int]:
    """0-based optimizer steps worth showing the learning rate at: the first step,
    the first after warm-up, the first after each ``step`` milestone (or the
    middle of a cosine), and the last."""
    last = cfg.max_steps - 1
    points = {0, cfg.warmup_steps, last}
    if cfg.schedule == "step":
        points |= {math.ceil(m * cfg.max_steps) for m in cfg.step_milestones}
    else:
        points.add((cfg.warmup_steps + cfg.max_steps) // 2)
    return sorted(p for p in points if 0 <= p <= last)


def count_images(ann_file: Path) -> tuple[int, str | None]:
    """``(number of images, first file_name)`` of a COCO json; ``ValueError`` with a
    one-line message naming the file when it is unreadable or has no ``images`` list."""
    try:
        data = json.loads(ann_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"--data {ann_file}: not a readable json ({err})") from None
    images = data.get("images") if isinstance(data, dict) else None
    if not isinstance(images, list):
        raise ValueError(f"--data {ann_file}: no 'images' list (not a COCO-format json)")
    first = images[0].get("file_name") if images and isinstance(images[0], dict) else None
    return len(images), first



def check_paths(
    cfg: EffOWTConfig, ann_file: Path, image_dir: Path, run_dir: Path, resume: bool
) -> tuple[int | None, list[str]]:
    """``(images in the json or None, problems)``: one line per missing or unusable path."""
    problems: list[str] = []
    n_images, first = None, None
    if not ann_file.is_file():
        problems.append(f"--data {ann_file}: annotation file not found")
    else:
        try:
            n_images, first = count_images(ann_file)
        except ValueError as err:
            problems.append(str(err))
    if not image_dir.is_dir():
        problems.append(f"--images {image_dir}: image folder not found")
    elif first is not None and not (image_dir / first).is_file():
        problems.append(f"--images {image_dir}: the json's first image {first!r} is not in it")
    if run_dir.exists() and not run_dir.is_dir():
        problems.append(f"--out {run_dir}: exists and is not a folder")
    elif writable_parent(run_dir) is None:
        problems.append(f"--out {run_dir}: cannot be created or written")
    elif resume and not has_checkpoint(run_dir):
        problems.append(f"--out {run_dir}: --resume given but there is no checkpoint ({WEIGHTS_FILE} + {STATE_FILE})")
    elif not resume and (run_dir / WEIGHTS_FILE).exists():
        problems.append(f"--out {run_dir}: already holds a checkpoint; pass --resume or choose another --out")
    weights = cfg.model.backbone.weights
    problem = None if weights is None else weights_problem(weights, cfg.model.backbone.name)
    if problem is not None:
        problems.append(f"model.backbone.weights {problem}")
    return n_images, problems


def dry_run(
    cfg: EffOWTConfig, ann_file: str | Path, image_dir: str | Path, run_dir: str | Path, resume: bool = False
) -> tuple[list[str], list[str]]:
    """Resolve a training run without running it: ``(report lines, problems)``.

    Config errors (including a ``global_batch`` that does not split over the
    current ``WORLD_SIZE``) raise ``ConfigError`` as a real run would; missing
    paths are returned as problems, one line each.
    """
    tcfg = cfg.train
    world = env_world_size()
    batch = per_process_batch(tcfg, world)
    ann_file, image_dir, run_dir = Path(ann_file), Path(image_dir), Path(run_dir)
    n_images, problems = check_paths(cfg, ann_file, image_dir, run_dir, resume)

    mcfg = cfg.model
    model = build_for_counting(mcfg, mcfg.mode)
    counts = count_parameters(model)
    step_images = batch * world * tcfg.accumulate
    seen = tcfg.max_steps * step_images
    epochs = f" = {seen / n_images:.2f} epochs of {n_images:,} images" if n_images else ""
    weights = mcfg.backbone.weights or "none (random init: features meaningless for transfer)"
    lines = [
        f"model       {mcfg.backbone.name}, mode {mcfg.mode}, {mcfg.image_size} px (built on the meta device)",
        f"weights     {weights}",
        f"parameters  {counts['trainable']:,} trainable of {counts['total']:,} "
        f"({100.0 * counts['trainable'] / counts['total']:.2f} %)",
        f"batch       {step_images} images per step = {batch} per process x {world} process(es) "
        f"(WORLD_SIZE={os.environ.get('WORLD_SIZE', 'unset')}) x {tcfg.accumulate} accumulated",
        f"schedule    {tcfg.max_steps:,} steps x {step_images} = {seen:,} images seen{epochs}",
        f"optimizer   AdamW, {tcfg.schedule} schedule, {tcfg.warmup_steps} warm-up steps, "
        f"clip_grad {tcfg.clip_grad}, amp {tcfg.amp}",
    ]
    points = schedule_points(tcfg)
    groups = param_groups(model.named_trainable_parameters(), tcfg)
    lines.append("learning rate per group at step (1-based, as logged in metrics.jsonl)")
    lines.append(f"  {'group':<18}{'params':>12}{'decay':>7}" + "".join(f"{p + 1:>11}" for p in points))
    for g in groups:
        n = sum(p.numel() for p in g["params"])
        lrs = "".join(f"{g['lr'] * lr_factor(p, tcfg):>11.3g}" for p in points)
        lines.append(f"  {g['name']:<18}{n:>12,}{g['weight_decay']:>7g}{lrs}")
    if not any(g["name"].startswith("backbone/") for g in groups):
        lines.append(f"  backbone: no trainable parameter (frozen in {mcfg.mode} mode; "
                     f"train.backbone_lr_mult={tcfg.backbone_lr_mult} applies in full mode only)")
    files = ", ".join((CONFIG_FILE, WEIGHTS_FILE, STATE_FILE, METRICS_FILE, EFFICIENCY_FILE, LOSS_PLOT_FILE))
    state = ("will be created" if not run_dir.is_dir() else
             "exists, holds a checkpoint" if (run_dir / WEIGHTS_FILE).exists() else
             "exists, no checkpoint: not a run yet")
    lines.append(f"outputs     {run_dir} ({state}): {files}")
    return lines, problems
