"""``effowt bench efficiency``: trainable parameters, peak training memory and step time per
transfer mode, on the same random batch, each mode in a fresh process
(:func:`effowt.bench.jobs.run_job`: a second mode measured in the same process
would inherit the first's peak).

A step is the trainer's own (:class:`effowt.training.step.TrainStep`): the
config's AdamW, learning-rate schedule, loss weights, accumulation, gradient
clipping and AMP, exactly what ``effowt train`` runs.

Memory figures:
- CUDA: ``torch.cuda.max_memory_allocated`` over the timed steps, reset after
  building the model (weights included, as the paper counts training memory; random
  backbone weights unless an override names a file: the sizes are the same).
- CPU: ``peak_mem_bytes`` is the process's peak RSS (``ru_maxrss``: weights,
  activations, optimizer state, allocator slack, the Python runtime);
  ``step_mem_bytes`` is that peak minus the RSS measured just before the first
  step (what training adds on top of the built model). Both are reported; the
  ratios use ``peak_mem_bytes``.
"""

from __future__ import annotations

import itertools
import logging
import os
import platform
import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from effowt.bench import RANDOM_BACKBONE, check_counts, names
from effowt.bench.jobs import run_job
from effowt.bench.output import markdown_table, write_outputs
from effowt.config import TRANSFER_MODES, apply_overrides, load_config, to_dict
from effowt.distributed import resolve_device
from effowt.errors import ConfigError

if TYPE_CHECKING:
    import argparse

    import torch

OUTPUTS = ("efficiency.json", "efficiency.md")
logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="paper", help="preset name or YAML path")
    parser.add_argument("--modes", default="side,head,full,lora", help="comma-separated transfer modes")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=1, help="images per view (each step sees 2 x batch)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps (median reported)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=None, help="folder for efficiency.json / efficiency.md")
    parser.add_argument("overrides", nargs="*", help="config overrides key=value")


def run(args: argparse.Namespace) -> dict[str, Any]:
    return run_efficiency(args.config, modes=names(args.modes), image_size=args.image_size, batch=args.batch,
                          steps=args.steps, warmup=args.warmup, device=args.device, out_dir=args.out,
                          overrides=args.overrides)


def random_batch(batch: int, image_size: int, boxes_per_image: int = 8,
                 seed: int = 0) -> tuple[torch.Tensor, list[dict]]:
    """A deterministic synthetic two-view batch: ``2 * batch`` images [0, 1] and targets whose
    instance ids pair image ``i`` with image ``i + batch`` (the two views)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    images = torch.rand(2 * batch, 3, image_size, image_size, generator=gen)
    targets = []
    for _view in range(2):
        for i in range(batch):
            xy = torch.rand(boxes_per_image, 2, generator=gen) * image_size * 0.7
            wh = torch.rand(boxes_per_image, 2, generator=gen) * image_size * 0.25 + 8
            boxes = torch.cat([xy, (xy + wh).clamp(max=image_size - 1)], dim=1)
            ids = torch.arange(boxes_per_image) + i * boxes_per_image
            targets.append({"boxes": boxes, "instance_ids": ids})
    return images, targets


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure_mode(config: str, mode: str, image_size: int, batch: int, steps: int, warmup: int, device: str,
                 overrides: list[str]) -> dict[str, Any]:
    """Build one transfer mode and time ``steps`` training steps (the trainer's
    :class:`~effowt.training.step.TrainStep`) after ``warmup`` steps. Runs in the
    current process: call it in a fresh one (:func:`run_efficiency` does)."""
    import torch

    from effowt.distributed import DistEnv
    from effowt.models.params import count_parameters
    from effowt.runs import build_seeded_model
    from effowt.training.meters import peak_memory, reset_peak_memory
    from effowt.training.step import TrainStep

    size = [f"model.mode={mode}", f"model.image_size={image_size}", f"data.image_size={image_size}"]
    cfg = apply_overrides(load_config(config, [RANDOM_BACKBONE, *overrides]), size)
    env = DistEnv(rank=0, world_size=1, local_rank=0, device=torch.device(device))
    model = build_seeded_model(cfg).to(env.device)
    model.train()
    counts = count_parameters(model)
    train_step = TrainStep(model, cfg.train, env)
    images, targets = random_batch(batch, image_size)
    batches = itertools.repeat((images.to(env.device), [{k: v.to(env.device) for k, v in t.items()} for t in targets]))
    cuda = env.device.type == "cuda"

    def timed_step(step: int) -> float:
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        train_step(batches, step)
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - start

    rss_before = _rss_bytes()
    reset_peak_memory(env.device)
    for step in range(1, warmup + 1):
        timed_step(step)
    times = [timed_step(warmup + 1 + i) for i in range(steps)]
    result = {
        "trainable": counts["trainable"],
        "total": counts["total"],
        "step_s": statistics.median(times),
        "images_per_s": 2 * batch * cfg.train.accumulate / statistics.median(times),
        **peak_memory(env.device),
    }
    if not cuda:
        result["step_mem_bytes"] = int(max(0, result["peak_mem_bytes"] - rss_before))
    return result


def run_efficiency(config: str, *, modes: list[str], image_size: int, batch: int, steps: int, warmup: int,
                   device: str = "cpu", out_dir: str | Path | None = None,
                   overrides: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """Measure each of ``modes`` in a fresh subprocess (``batch`` images per view,
    ``warmup`` untimed then ``steps`` timed steps, median reported); write
    ``efficiency.json`` and ``efficiency.md`` into ``out_dir`` when given."""
    import torch

    unknown = [m for m in modes if m not in TRANSFER_MODES]
    if unknown:
        raise ConfigError(f"unknown mode(s) {unknown}; choose from {list(TRANSFER_MODES)}")
    check_counts(("--batch", batch, 1), ("--steps", steps, 1), ("--warmup", warmup, 0))
    cfg = apply_overrides(load_config(config, [RANDOM_BACKBONE, *overrides]),
                          [f"model.image_size={image_size}", f"data.image_size={image_size}"])
    resolve_device(device)
    report: dict[str, Any] = {
        "setup": {
            "config": config,
            "backbone": cfg.model.backbone.name,
            "device": device if not device.startswith("cuda") else torch.cuda.get_device_name(),
            "image_size": image_size,
            "batch": batch,
            "images_per_step": 2 * batch * cfg.train.accumulate,
            "steps": steps,
            "warmup": warmup,
            "step": "effowt.training.step.TrainStep (the trainer's step)",
            "overrides": list(overrides),
            "torch": torch.__version__,
            "cpu": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(),
        },
        "modes": {},
    }
    for mode in modes:
        job = dict(config=config, mode=mode, image_size=image_size, batch=batch, steps=steps, warmup=warmup,
                   device=device, overrides=list(overrides))
        report["modes"][mode] = run_job("effowt.bench.efficiency:measure_mode", job, f"efficiency of mode {mode!r}")
        logger.info("  %-5s %s", mode, _row(report["modes"][mode]))
    modes_ = report["modes"]
    if "side" in modes_ and "full" in modes_:
        side, full = modes_["side"], modes_["full"]
        report["ratios"] = {
            "trainable_side_over_full": side["trainable"] / full["trainable"],
            "memory_side_over_full": side["peak_mem_bytes"] / full["peak_mem_bytes"],
            "step_time_side_over_full": side["step_s"] / full["step_s"],
        }
        if "step_mem_bytes" in side and full.get("step_mem_bytes"):
            report["ratios"]["step_memory_side_over_full"] = side["step_mem_bytes"] / full["step_mem_bytes"]
    report["config"] = to_dict(cfg)
    if out_dir is not None:
        write_outputs(Path(out_dir) / OUTPUTS[0], report, markdown(report))
    return report


def _row(m: dict[str, Any]) -> str:
    return (f"trainable {m['trainable'] / 1e6:8.2f} M / {m['total'] / 1e6:8.2f} M  "
            f"peak mem {m['peak_mem_bytes'] / 2**20:9.0f} MiB  step {m['step_s']:7.3f} s")


def markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown table (one row per mode, then the side/full ratios)."""
    s = report["setup"]
    full_trainable = report["modes"].get("full", {}).get("trainable")
    rows = [
        [mode, f"{m['trainable']:,}", f"{m['total']:,}",
         f"{100 * m['trainable'] / full_trainable:.2f}" if full_trainable else "-",
         f"{m['peak_mem_bytes'] / 2**20:.0f}", f"{m['step_s']:.3f}", f"{m['images_per_s']:.2f}"]
        for mode, m in report["modes"].items()
    ]
    lines = [
        f"# Efficiency: {s['backbone']} at {s['image_size']} px, batch {s['batch']} x 2 views, {s['device']}",
        "",
        *markdown_table(["mode", "trainable", "total", "trainable %", "peak memory (MiB)", "step (s)", "images/s"],
                        rows),
    ]
    if "ratios" in report:
        lines += ["", *markdown_table(["side / full", "value"], [[k, f"{v:.3f}"] for k, v in report["ratios"].items()])]
    kind = next(iter(report["modes"].values()), {}).get("memory_kind", "")
    lines += ["", f"Memory: `{kind}` (see `effowt.bench.efficiency`)."]
    return "\n".join(lines) + "\n"
