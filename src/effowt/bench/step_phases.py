"""``effowt bench step``: where one training step's time goes.

The step of ``effowt train`` cut into its phases, each timed on its own (median
over ``steps`` steps after ``warmup``), on the real two-view data of a COCO-format
training set::

    data       dataset items (decode + two-view augmentation) and collation
    backbone   preprocess + the backbone forward (under no_grad unless it trains)
    neck       side network or pyramid forward
    heads      detection + ReID heads and their losses (forward)
    backward   loss.backward()
    optimizer  AdamW step (the trainer's parameter groups)

What it computes is the trainer's: the same model, forward, parameter groups and loss
weighting; only the clock is added (the forward's stages by hooks, :class:`effowt.timing.ModuleTimer`).
Timing phases apart synchronises the device between them, so the sum is an upper bound
of the trainer's step on a GPU.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from effowt.bench import check_counts
from effowt.bench.output import markdown_table
from effowt.config import load_config
from effowt.timing import ModuleTimer

if TYPE_CHECKING:
    import argparse

    import torch

PHASES = ("data", "backbone", "neck", "heads", "backward", "optimizer")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="miniowt", help="preset name or YAML path")
    parser.add_argument("--data", required=True, help="COCO-format training annotations (json)")
    parser.add_argument("--images", required=True, help="folder of the training images")
    parser.add_argument("--steps", type=int, default=10, help="timed steps (median reported)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("overrides", nargs="*", help="config overrides key=value")


def run(args: argparse.Namespace) -> dict[str, Any]:
    return run_step_profile(args.config, args.data, args.images, args.steps, args.warmup, args.device,
                            args.overrides)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize(device)


def run_step_profile(config: str, ann_file: str | Path, image_dir: str | Path, steps: int = 10, warmup: int = 2,
                     device: str = "cpu", overrides: list[str] = ()) -> dict[str, Any]:
    """Median milliseconds per phase of a training step (see the module docstring):
    ``{"config", "mode", "batch_images", "image_size", "backbone_dtype", "ms": {phase: ms},
    "step_ms"}``."""
    import torch

    from effowt.data.coco import TwoViewCocoDataset, collate_two_views
    from effowt.runs import build_seeded_model
    from effowt.training.optim import build_optimizer, weighted_loss

    check_counts(("--steps", steps, 1), ("--warmup", warmup, 0))
    cfg = load_config(config, list(overrides))
    dev = torch.device(device)
    dataset = TwoViewCocoDataset(ann_file, image_dir, cfg.data, seed=cfg.train.seed)
    model = build_seeded_model(cfg).to(dev).train()
    optimizer = build_optimizer(model.named_trainable_parameters(), cfg.train)
    batch = cfg.train.batch_size
    times: dict[str, list[float]] = {phase: [] for phase in PHASES}
    stages = ModuleTimer(model.stage_modules().items(), lambda: _sync(dev))  # the forward's stages, by hooks
    for it in range(warmup + steps):
        marks = [time.perf_counter()]
        images, targets = collate_two_views([dataset[(it * batch + j) % len(dataset)] for j in range(batch)])
        images = images.to(dev)
        targets = [{k: v.to(dev) for k, v in t.items()} for t in targets]
        _sync(dev)
        marks.append(time.perf_counter())
        stages.reset()
        with stages:
            loss = weighted_loss(model(images, targets), cfg.train)
        _sync(dev)
        start, backbone = marks[-1], stages.seconds["preprocess"] + stages.seconds["backbone"]
        marks += [start + backbone, start + backbone + stages.seconds["neck"], time.perf_counter()]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        _sync(dev)
        marks.append(time.perf_counter())
        optimizer.step()
        _sync(dev)
        marks.append(time.perf_counter())
        if it >= warmup:
            for phase, start, end in zip(PHASES, marks, marks[1:]):
                times[phase].append(end - start)
    ms = {phase: round(1000 * statistics.median(values), 1) for phase, values in times.items()}
    return {
        "config": config,
        "overrides": list(overrides),
        "mode": cfg.model.mode,
        "device": device,
        "threads": torch.get_num_threads(),
        "batch_images": 2 * batch,
        "image_size": cfg.data.image_size,
        "backbone_dtype": cfg.model.backbone.dtype,
        "ms": ms,
        "step_ms": round(sum(ms.values()), 1),
    }


def markdown(report: dict[str, Any]) -> str:
    """The step's milliseconds per phase and in total, as a one-row table."""
    row = [" ".join(report["overrides"]) or report["config"], *[f"{report['ms'][p]:.0f}" for p in PHASES],
           f"{report['step_ms']:.0f}"]
    return "\n".join(markdown_table(["setting", *PHASES, "step (ms)"], [row])) + "\n"
