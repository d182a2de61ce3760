"""``effowt bench speed``: inference time per frame, split into backbone, side network
(or simple pyramid), heads and association, and the overhead over the backbone.

The frozen backbone's forward is the floor that any tracker built on it pays, so
the figure of merit is ``overhead_over_backbone = (side + heads + association) /
backbone``. Frames are random (the timing does not depend on content), the model
has random weights unless the config names a weight file, and the detection and
association thresholds are opened (``head.score_thresh=0``, ``tracker.det_thresh=0``)
so every frame carries ``head.detections_per_img`` boxes through NMS and
association: the worst case, not a lucky empty frame.
"""

from __future__ import annotations

import platform
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import torch

from effowt.config import apply_overrides, load_config
from effowt.errors import EffOWTError
from effowt.fileio import atomic_write_json

# reported stage -> the Tracker timing it reads
STAGE_TIMINGS = {"backbone": "backbone", "side": "neck", "heads": "heads", "association": "association"}


def run_speed(config: str, image_size: int, frames: int, warmup: int, device: str,
              overrides: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """Time ``frames`` tracked frames after ``warmup``; medians of per-frame stage times."""
    from effowt.models import build_model
    from effowt.tracking import Tracker

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise EffOWTError("--device cuda asked for, but no CUDA device is available")
    cfg = load_config(config, list(overrides))
    cfg = apply_overrides(cfg, [
        f"model.image_size={image_size}", f"data.image_size={image_size}", "model.head.score_thresh=0.0",
        "tracker.det_thresh=0.0",
        "tracker.init_thresh=0.0", f"tracker.max_dets={cfg.model.head.detections_per_img}",
    ])
    torch.manual_seed(0)
    model = build_model(cfg.model)
    tracker = Tracker(model, cfg.tracker, image_size, device=device, time_stages=True)
    rng = np.random.default_rng(0)
    frame_list = [rng.integers(0, 256, (image_size, image_size, 3), dtype=np.uint8) for _ in range(4)]
    per_frame: dict[str, list[float]] = {name: [] for name in STAGE_TIMINGS}
    for i in range(warmup + frames):
        tracker.reset_timings()
        tracker.update(frame_list[i % len(frame_list)])
        if i >= warmup:
            for name, key in STAGE_TIMINGS.items():
                per_frame[name].append(1000 * tracker.timings[key])
    ms = {name: statistics.median(values) for name, values in per_frame.items()}
    return {
        "per_frame_ms": ms,
        "overhead_over_backbone": (ms["side"] + ms["heads"] + ms["association"]) / ms["backbone"],
        "setup": {
            "config": config, "backbone": cfg.model.backbone.name, "mode": cfg.model.mode,
            "image_size": image_size, "frames": frames, "warmup": warmup,
            "device": device if not device.startswith("cuda") else torch.cuda.get_device_name(),
            "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
            "detections_per_frame": cfg.model.head.detections_per_img, "overrides": list(overrides),
        },
    }


def speed_markdown(report: dict[str, Any]) -> str:
    """The per-frame split as a Markdown table."""
    s, ms = report["setup"], report["per_frame_ms"]
    lines = [
        f"# Inference speed: {s['backbone']} ({s['mode']}) at {s['image_size']} px, {s['device']}",
        "",
        "| stage | ms / frame |",
        "|---|---:|",
        *[f"| {name} | {value:.2f} |" for name, value in ms.items()],
        f"| (side + heads + association) / backbone | {report['overhead_over_backbone']:.3f} |",
    ]
    return "\n".join(lines) + "\n"


def write_speed(report: dict[str, Any], path: str | Path) -> None:
    """Write the report as JSON (atomically)."""
    atomic_write_json(path, report)
