"""``effowt bench speed``: inference time per frame, split into backbone, side network
(or simple pyramid), heads and association, the overhead over the backbone, and
throughput in frames/s at a batch of frames.

The frozen backbone's forward is the floor that any tracker built on it pays, so
the figure of merit is ``overhead_over_backbone = (side + heads + association) /
backbone``. Frames are random (the timing does not depend on content), the model
has random weights unless the config names a weight file, and the detection and
association thresholds are opened (``head.score_thresh=0``, ``tracker.det_thresh=0``)
so every frame carries ``head.detections_per_img`` boxes through NMS and
association: the worst case, not a lucky empty frame.

Three measurements, all in one run:

* **stages** (``per_frame_ms``): ``frames`` frames one at a time through the
  tracker's stage methods (CUDA synchronised between stages); medians.
* **parts** (``profile``, with ``profile=True``): during the same frames, the
  exclusive time of every side-network and head part (:mod:`effowt.bench.profile`),
  medians per part, by layer type, and the FCOS candidates that reach NMS.
* **throughput** (``frames_per_s``): the plain tracker (no stage timing, no
  synchronisation) over ``frames`` frames in batches of ``batch_frames`` with
  ``Tracker.update_batch``, and at batch 1 too when ``batch_frames > 1``; the
  two are measured ``repeats`` times, interleaved, and the median is reported,
  so their ratio (``batch_speedup``) compares like with like on a shared machine.
"""

from __future__ import annotations

import contextlib
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from effowt.bench.profile import HEADS_REST, SIDE_REST, ModuleProfiler, by_layer_type
from effowt.config import EffOWTConfig, apply_overrides, load_config
from effowt.errors import EffOWTError
from effowt.fileio import atomic_write_json

STAGES = {"backbone": "backbone", "side": "neck", "heads": "heads", "association": "association"}


def _bench_config(config: str, image_size: int, overrides: list[str]) -> EffOWTConfig:
    cfg = load_config(config, list(overrides))
    return apply_overrides(cfg, [
        f"model.image_size={image_size}", "model.head.score_thresh=0.0", "tracker.det_thresh=0.0",
        "tracker.init_thresh=0.0", f"tracker.max_dets={cfg.model.head.detections_per_img}",
    ])


def run_speed(config: str, image_size: int, frames: int, warmup: int, device: str, overrides: list[str] = (),
              profile: bool = False, batch_frames: int = 1, precision: str = "fp32",
              repeats: int = 3) -> dict[str, Any]:
    """Stage times (and with ``profile`` part times) over ``frames`` frames after
    ``warmup``, then throughput at ``batch_frames`` (see the module docstring)."""
    from effowt.models import build_model
    from effowt.tracking import Tracker

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise EffOWTError("--device cuda asked for, but no CUDA device is available")
    for name, value, least in (("--frames", frames, 1), ("--warmup", warmup, 0), ("--batch-frames", batch_frames, 1),
                               ("--repeats", repeats, 1)):
        if value < least:
            raise EffOWTError(f"{name} must be >= {least}, got {value}")
    cfg = _bench_config(config, image_size, overrides)
    torch.manual_seed(0)
    model = build_model(cfg.model)
    tracker = Tracker(model, cfg.tracker, image_size, device=device, time_stages=True, precision=precision)
    sync = (lambda: torch.cuda.synchronize(tracker.device)) if tracker.device.type == "cuda" else (lambda: None)
    profiler = ModuleProfiler(model, sync) if profile else None
    rng = np.random.default_rng(0)
    frame_list = [rng.integers(0, 256, (image_size, image_size, 3), dtype=np.uint8) for _ in range(4)]
    per_frame: dict[str, list[float]] = {name: [] for name in STAGES}
    parts: dict[str, list[float]] = {}
    tracks, candidates = [], []
    with profiler or contextlib.nullcontext():
        for i in range(warmup + frames):
            tracker.reset_timings()
            if profiler:
                profiler.reset()
            tracker.update(frame_list[i % len(frame_list)])
            if i < warmup:
                continue
            for name, key in STAGES.items():
                per_frame[name].append(1000 * tracker.timings[key])
            tracks.append(len(tracker.associator.tracks))
            if profiler:
                candidates.extend(profiler.candidates)
                for stage, rest in (("neck", SIDE_REST), ("heads", HEADS_REST)):
                    timed = sum(v for k, v in profiler.seconds.items() if profiler.stage_of[k] == stage)
                    parts.setdefault(rest, []).append(1000 * (tracker.timings[stage] - timed))
                for name, seconds in profiler.seconds.items():
                    parts.setdefault(name, []).append(1000 * seconds)
    ms = {name: statistics.median(values) for name, values in per_frame.items()}
    report: dict[str, Any] = {
        "per_frame_ms": ms,
        "overhead_over_backbone": (ms["side"] + ms["heads"] + ms["association"]) / ms["backbone"],
    }
    if profiler:
        parts_ms = {name: statistics.median(values) for name, values in parts.items()}
        report["profile"] = {
            "parts_ms": dict(sorted(parts_ms.items(), key=lambda kv: -kv[1])),
            "by_layer_type_ms": dict(sorted(by_layer_type(parts_ms).items(), key=lambda kv: -kv[1])),
            "fcos_candidates_to_nms": statistics.median(candidates),
            "tracks_in_memory": statistics.median(tracks),
        }
    plain = Tracker(model, cfg.tracker, image_size, device=device, precision=precision)
    fps = throughput(plain, frame_list, frames, sorted({1, batch_frames}), repeats)
    report["frames_per_s"] = fps[batch_frames]
    report["throughput_frames_per_s"] = {str(n): v for n, v in fps.items()}
    if batch_frames > 1:
        report["batch_speedup"] = fps[batch_frames] / fps[1]
    report["setup"] = {
        "config": config, "backbone": cfg.model.backbone.name, "mode": cfg.model.mode,
        "image_size": image_size, "frames": frames, "warmup": warmup, "batch_frames": batch_frames,
        "repeats": repeats, "precision": precision,
        "device": device if not device.startswith("cuda") else torch.cuda.get_device_name(),
        "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
        "detections_per_frame": cfg.model.head.detections_per_img, "overrides": list(overrides),
    }
    return report


def throughput(tracker: Any, frame_list: list[np.ndarray], frames: int, batch_sizes: list[int],
               repeats: int) -> dict[int, float]:
    """Median frames/s of ``tracker.update_batch`` per batch size: each repeat tracks, for
    every batch size in turn, one warm-up batch and then ``frames`` frames (rounded up to
    whole batches) of a fresh video."""
    runs: dict[int, list[float]] = {n: [] for n in batch_sizes}
    for _ in range(repeats):
        for n in batch_sizes:
            tracker.reset()
            batches = [[frame_list[(b * n + j) % len(frame_list)] for j in range(n)]
                       for b in range(1 + -(-frames // n))]
            tracker.update_batch(batches[0])
            start = time.perf_counter()
            for batch in batches[1:]:
                tracker.update_batch(batch)
            runs[n].append(n * (len(batches) - 1) / (time.perf_counter() - start))
    return {n: statistics.median(values) for n, values in runs.items()}


def speed_markdown(report: dict[str, Any]) -> str:
    """The per-frame split (and the profile, the throughput) as Markdown tables."""
    s, ms = report["setup"], report["per_frame_ms"]
    lines = [
        f"# Inference speed: {s['backbone']} ({s['mode']}) at {s['image_size']} px, {s['device']}, "
        f"{s['precision']}, {s['threads']} thread(s)",
        "",
        "| stage | ms / frame |",
        "|---|---:|",
        *[f"| {name} | {value:.2f} |" for name, value in ms.items()],
        f"| (side + heads + association) / backbone | {report['overhead_over_backbone']:.3f} |",
    ]
    if "profile" in report:
        p = report["profile"]
        side = ms["side"] or 1.0
        lines += ["", "| part (exclusive) | ms / frame | % of side |", "|---|---:|---:|"]
        lines += [f"| {name} | {value:.2f} | {100 * value / side:.1f} |" for name, value in p["parts_ms"].items()
                  if not _is_head_part(name)]
        lines += ["", "| head part | ms / frame |", "|---|---:|"]
        lines += [f"| {name} | {value:.2f} |" for name, value in p["parts_ms"].items() if _is_head_part(name)]
        lines += ["", "| side layer type (all stages) | ms / frame |", "|---|---:|"]
        lines += [f"| {name} | {value:.2f} |" for name, value in p["by_layer_type_ms"].items()
                  if not _is_head_part(name)]
        lines += ["", f"FCOS candidates reaching NMS per frame: {p['fcos_candidates_to_nms']:.0f}; "
                      f"tracks in memory: {p['tracks_in_memory']:.0f}"]
    lines += ["", "| batch of frames | frames / s |", "|---|---:|"]
    lines += [f"| {n} | {v:.2f} |" for n, v in report["throughput_frames_per_s"].items()]
    return "\n".join(lines) + "\n"


def _is_head_part(name: str) -> bool:
    return name.startswith(("FCOS", "ReID"))


def write_speed(report: dict[str, Any], path: str | Path) -> None:
    """Write the report as JSON (atomically)."""
    atomic_write_json(path, report)
