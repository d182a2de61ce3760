"""``effowt bench speed``: inference time per frame, split into backbone, side network
(or simple pyramid), heads and association, the overhead over the backbone, and
throughput in frames/s at a batch of frames.

The frozen backbone's forward is the floor that any tracker built on it pays, so
the figure of merit is ``overhead_over_backbone = (side + heads + association) /
backbone``. Frames are random (the timing does not depend on content), the model
has random weights (the preset's named weights are not fetched: timing does not depend
on them either) unless an override names a weight file, and the detection and
association thresholds are opened (``head.score_thresh=0``, ``tracker.det_thresh=0``)
so every frame carries ``head.detections_per_img`` boxes through NMS and
association: the worst case, not a lucky empty frame.

Three measurements, all in one run:

* **stages** (``per_frame_ms``): ``frames`` frames one at a time through the
  tracker with stage timing (forward hooks, CUDA synchronised around each stage); medians.
* **parts** (``profile``, with ``profile=True``): during the same frames, the
  exclusive time of every side-network and head part (:mod:`effowt.bench.profile`),
  medians per part, by layer type, and the FCOS candidates that reach NMS.
* **throughput** (``frames_per_s``): the plain tracker (no stage timing, no
  synchronisation) over ``frames`` frames in batches of ``batch_frames`` with
  ``Tracker.update_batch``, and at batch 1 too when ``batch_frames > 1``; the
  two are measured ``repeats`` times, interleaved, and the median is reported,
  so their ratio (``batch_speedup``) compares like with like on a shared machine.

``variants`` (``--variant NAME:OVERRIDES``) are other configs measured in the same
run, interleaved frame by frame with the default, for ratios under one load.
"""

from __future__ import annotations

import contextlib
import platform
import statistics
import time
from typing import TYPE_CHECKING, Any

from effowt.bench import RANDOM_BACKBONE, check_counts
from effowt.bench.profile import HEADS_REST, SIDE_REST, ModuleProfiler, by_layer_type
from effowt.commands import int_at_least
from effowt.config import PRECISION_NAMES, EffOWTConfig, apply_overrides, load_config
from effowt.distributed import resolve_device
from effowt.errors import ConfigError, EffOWTError

if TYPE_CHECKING:
    import argparse

    import numpy as np

# reported stage -> the Tracker timing it reads
STAGE_TIMINGS = {"backbone": "backbone", "side": "neck", "heads": "heads", "association": "association"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="paper", help="preset name or YAML path")
    parser.add_argument("--image-size", type=int_at_least(16), default=None,
                        help="input size in px (default: the preset's model.image_size)")
    parser.add_argument("--frames", type=int, default=10, help="timed frames (median reported)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--profile", action="store_true",
                        help="also time every side-network and head part (exclusive ms per part and layer type)")
    parser.add_argument("--batch-frames", type=int_at_least(1), default=1,
                        help="frames per model batch for frames_per_s (batch 1 is measured too, in the same run)")
    parser.add_argument("--repeats", type=int_at_least(1), default=3, help="throughput repeats (median reported)")
    parser.add_argument("--precision", choices=list(PRECISION_NAMES), default="fp32",
                        help="precision of the frozen backbone and the side network")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME:KEY=V [KEY=V ...]",
                        help="also measure the config with these overrides, interleaved in the same run "
                             "(repeatable)")
    parser.add_argument("overrides", nargs="*", help="config overrides key=value")


def run(args: argparse.Namespace) -> dict[str, Any]:
    return run_speed(args.config, args.image_size, args.frames, args.warmup, args.device, args.overrides,
                     profile=args.profile, batch_frames=args.batch_frames, precision=args.precision,
                     repeats=args.repeats, variants=parse_variants(args.variant))


def parse_variants(specs: list[str]) -> dict[str, list[str]]:
    """``NAME:KEY=V KEY=V`` -> {NAME: [KEY=V, ...]} (ConfigError on a malformed or repeated name)."""
    out: dict[str, list[str]] = {}
    for spec in specs:
        name, sep, overrides = spec.partition(":")
        if not sep or not name.strip() or name.strip() in out:
            raise ConfigError(f"--variant {spec!r}: expected a new NAME:KEY=V [KEY=V ...]")
        out[name.strip()] = overrides.split()
    return out


def _bench_config(config: str, image_size: int, overrides: list[str]) -> EffOWTConfig:
    """The preset with the benchmark's settings: every candidate box reaches the tracker,
    at ``image_size`` px, random backbone weights unless ``overrides`` name some."""
    cfg = load_config(config, [RANDOM_BACKBONE, *overrides])
    return apply_overrides(cfg, [
        f"model.image_size={image_size}", f"data.image_size={image_size}", "model.head.score_thresh=0.0",
        "tracker.det_thresh=0.0", "tracker.init_thresh=0.0", f"tracker.max_dets={cfg.model.head.detections_per_img}",
    ])


class _Variant:
    """One model under measurement: its tracker with stage timing (and profiler), the
    plain tracker for throughput, and the per-frame samples gathered so far."""

    def __init__(self, name: str, overrides: list[str], cfg: EffOWTConfig, model: Any, device: str,
                 precision: str, profile: bool) -> None:
        import torch

        from effowt.tracking import Tracker

        self.name, self.overrides, self.cfg = name, overrides, cfg
        self.tracker = Tracker(model, cfg.tracker, device=device, time_stages=True, precision=precision)
        self.plain = Tracker(model, cfg.tracker, device=device, precision=precision)
        dev = self.tracker.device
        sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
        self.profiler = ModuleProfiler(self.tracker.model, sync) if profile else None
        self.per_frame: dict[str, list[float]] = {name: [] for name in STAGE_TIMINGS}
        self.parts: dict[str, list[float]] = {}
        self.tracks: list[int] = []
        self.candidates: list[int] = []

    def frame(self, frame: np.ndarray, keep: bool) -> None:
        """Track one frame with stage timing; keep its samples unless warming up."""
        tracker, profiler = self.tracker, self.profiler
        tracker.reset_timings()
        with profiler or contextlib.nullcontext():
            if profiler:
                profiler.reset()
            tracker.update(frame)
        if not keep:
            return
        for name, key in STAGE_TIMINGS.items():
            self.per_frame[name].append(1000 * tracker.timings[key])
        self.tracks.append(len(tracker.associator.tracks))
        if profiler:
            self.candidates.extend(profiler.candidates)
            for stage, rest in (("neck", SIDE_REST), ("heads", HEADS_REST)):
                timed = sum(v for k, v in profiler.seconds.items() if profiler.stage_of[k] == stage)
                self.parts.setdefault(rest, []).append(1000 * (tracker.timings[stage] - timed))
            for name, seconds in profiler.seconds.items():
                self.parts.setdefault(name, []).append(1000 * seconds)

    def summary(self, fps: dict[int, float], batch_frames: int) -> dict[str, Any]:
        ms = {name: statistics.median(values) for name, values in self.per_frame.items()}
        out: dict[str, Any] = {
            "overrides": self.overrides,
            "per_frame_ms": ms,
            "overhead_over_backbone": (ms["side"] + ms["heads"] + ms["association"]) / ms["backbone"],
        }
        if self.profiler:
            ran = self.profiler.called | {SIDE_REST, HEADS_REST}
            parts_ms = {name: statistics.median(values) for name, values in self.parts.items() if name in ran}
            out["profile"] = {
                "parts_ms": dict(sorted(parts_ms.items(), key=lambda kv: -kv[1])),
                "by_layer_type_ms": dict(sorted(by_layer_type(parts_ms).items(), key=lambda kv: -kv[1])),
                "fcos_candidates_to_nms": statistics.median(self.candidates),
                "tracks_in_memory": statistics.median(self.tracks),
            }
        out["frames_per_s"] = fps[batch_frames]
        out["throughput_frames_per_s"] = {str(n): v for n, v in fps.items()}
        if batch_frames > 1:
            out["batch_speedup"] = fps[batch_frames] / fps[1]
        return out


def run_speed(config: str, image_size: int | None, frames: int, warmup: int, device: str,
              overrides: list[str] | tuple[str, ...] = (),
              profile: bool = False, batch_frames: int = 1, precision: str = "fp32", repeats: int = 3,
              variants: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """Stage times (and with ``profile`` part times) over ``frames`` frames after
    ``warmup``, then throughput at ``batch_frames`` (see the module docstring), at
    ``image_size`` px (``None``: the preset's own size, the one its model tracks at).

    ``variants`` (name -> more overrides) are measured in the same run, interleaved
    frame by frame with the command's own config (``default``), so that their ratios
    see the same machine load; variants whose backbone config equals the default's
    share its backbone module (the frozen backbone is the same function). The report's
    top level is ``default``'s; ``report["variants"]`` has every variant, ``default`` first.
    """
    import numpy as np
    import torch

    from effowt.models import build_model

    resolve_device(device)
    check_counts(("--frames", frames, 1), ("--warmup", warmup, 0), ("--batch-frames", batch_frames, 1),
                 ("--repeats", repeats, 1))
    if "default" in (variants or {}):
        raise EffOWTError("--variant: 'default' names the command's own config; choose another name")
    specs = {"default": [], **(variants or {})}
    image_size = image_size or load_config(config, list(overrides)).model.image_size  # one size for every arm
    configs = {name: _bench_config(config, image_size, [*overrides, *extra]) for name, extra in specs.items()}
    arms: list[_Variant] = []
    for name, cfg in configs.items():
        torch.manual_seed(0)
        model = build_model(cfg.model)
        if arms and cfg.model.backbone == configs["default"].model.backbone:
            model.backbone = arms[0].tracker.model.backbone
        arms.append(_Variant(name, specs[name], cfg, model, device, precision, profile))
    rng = np.random.default_rng(0)
    frame_list = [rng.integers(0, 256, (image_size, image_size, 3), dtype=np.uint8) for _ in range(4)]
    for i in range(warmup + frames):
        for arm in arms:
            arm.frame(frame_list[i % len(frame_list)], keep=i >= warmup)
    fps = throughput([arm.plain for arm in arms], frame_list, frames, sorted({1, batch_frames}), repeats)
    summaries = {arm.name: arm.summary(fps[k], batch_frames) for k, arm in enumerate(arms)}
    base = summaries["default"]
    for summary in summaries.values():
        summary["side_vs_default"] = summary["per_frame_ms"]["side"] / base["per_frame_ms"]["side"]
    cfg = configs["default"]
    report: dict[str, Any] = {k: v for k, v in base.items() if k not in ("overrides", "side_vs_default")}
    if variants:
        report["variants"] = summaries
    report["setup"] = {
        "config": config, "backbone": cfg.model.backbone.name, "mode": cfg.model.mode,
        "image_size": image_size, "frames": frames, "warmup": warmup, "batch_frames": batch_frames,
        "repeats": repeats, "precision": precision,
        "device": device if not device.startswith("cuda") else torch.cuda.get_device_name(),
        "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
        "detections_per_frame": cfg.model.head.detections_per_img, "overrides": list(overrides),
    }
    return report


def throughput(trackers: list[Any], frame_list: list[np.ndarray], frames: int, batch_sizes: list[int],
               repeats: int) -> list[dict[int, float]]:
    """Median frames/s of ``tracker.update_batch`` per tracker and batch size: each
    repeat tracks, for every tracker and batch size in turn, one warm-up batch and then
    ``frames`` frames (rounded up to whole batches) of a fresh video."""
    runs: list[dict[int, list[float]]] = [{n: [] for n in batch_sizes} for _ in trackers]
    for _ in range(repeats):
        for tracker, run in zip(trackers, runs):
            for n in batch_sizes:
                tracker.reset()
                batches = [[frame_list[(b * n + j) % len(frame_list)] for j in range(n)]
                           for b in range(1 + -(-frames // n))]
                tracker.update_batch(batches[0])
                start = time.perf_counter()
                for batch in batches[1:]:
                    tracker.update_batch(batch)
                run[n].append(n * (len(batches) - 1) / (time.perf_counter() - start))
    return [{n: statistics.median(values) for n, values in run.items()} for run in runs]


def markdown(report: dict[str, Any]) -> str:
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
    if "variants" in report:
        lines += ["", "Variants, measured in the same run (interleaved frame by frame):", "",
                  "| variant | overrides | side (ms) | heads (ms) | association (ms) | backbone (ms) | "
                  "overhead / backbone | side / default | frames / s |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        for name, v in report["variants"].items():
            m = v["per_frame_ms"]
            lines.append(f"| {name} | {' '.join(v['overrides']) or '-'} | {m['side']:.1f} | {m['heads']:.1f} | "
                         f"{m['association']:.1f} | {m['backbone']:.1f} | {v['overhead_over_backbone']:.3f} | "
                         f"{v['side_vs_default']:.2f} | {v['frames_per_s']:.2f} |")
    return "\n".join(lines) + "\n"


def _is_head_part(name: str) -> bool:
    return name.startswith(("FCOS", "ReID"))

