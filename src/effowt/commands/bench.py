"""``effowt bench {efficiency,speed,step,probe,accuracy,ablation,tracker}``: benchmarks with JSON + Markdown output."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from effowt.commands import int_at_least
from effowt.config import PRECISION_NAMES
from effowt.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bench", required=True)

    eff = sub.add_parser("efficiency", help="trainable params, peak training memory, step time per mode")
    eff.add_argument("--config", default="paper", help="preset name or YAML path")
    eff.add_argument("--modes", default="side,head,full,lora", help="comma-separated transfer modes")
    eff.add_argument("--image-size", type=int, default=224)
    eff.add_argument("--batch", type=int, default=1, help="images per view (each step sees 2 x batch)")
    eff.add_argument("--steps", type=int, default=3, help="timed steps (median reported)")
    eff.add_argument("--warmup", type=int, default=1)
    eff.add_argument("--device", default="cpu")
    eff.add_argument("--out", default=None, help="folder for efficiency.json / efficiency.md")
    eff.add_argument("overrides", nargs="*", help="config overrides key=value")

    speed = sub.add_parser("speed", help="per-frame inference time: backbone, side, heads, association")
    speed.add_argument("--config", default="paper", help="preset name or YAML path")
    speed.add_argument("--image-size", type=int_at_least(16), default=None,
                       help="input size in px (default: the preset's model.image_size)")
    speed.add_argument("--frames", type=int, default=10, help="timed frames (median reported)")
    speed.add_argument("--warmup", type=int, default=2)
    speed.add_argument("--device", default="cpu")
    speed.add_argument("--profile", action="store_true",
                       help="also time every side-network and head part (exclusive ms per part and layer type)")
    speed.add_argument("--batch-frames", type=int_at_least(1), default=1,
                       help="frames per model batch for frames_per_s (batch 1 is measured too, in the same run)")
    speed.add_argument("--repeats", type=int_at_least(1), default=3, help="throughput repeats (median reported)")
    speed.add_argument("--precision", choices=list(PRECISION_NAMES), default="fp32",
                       help="precision of the frozen backbone and the side network")
    speed.add_argument("--variant", action="append", default=[], metavar="NAME:KEY=V [KEY=V ...]",
                       help="also measure the config with these overrides, interleaved in the same run (repeatable)")
    speed.add_argument("--json", default=None, help="write the report to this JSON file")
    speed.add_argument("overrides", nargs="*", help="config overrides key=value")

    step = sub.add_parser(
        "step", help="where one training step's time goes (data, backbone, neck, heads, backward, optimizer)")
    step.add_argument("--config", default="miniowt", help="preset name or YAML path")
    step.add_argument("--data", required=True, help="COCO-format training annotations (json)")
    step.add_argument("--images", required=True, help="folder of the training images")
    step.add_argument("--steps", type=int, default=10, help="timed steps (median reported)")
    step.add_argument("--warmup", type=int, default=2)
    step.add_argument("--device", default="cpu")
    step.add_argument("--json", default=None, help="write the report to this JSON file")
    step.add_argument("overrides", nargs="*", help="config overrides key=value")

    probe = sub.add_parser("probe", help="linear objectness probe of the frozen backbone's taps: known vs unknown")
    probe.add_argument("--gt", required=True,
                       help="an annotated TAO split, e.g. a MiniOWT world's val/annotations.json")
    probe.add_argument("--config", default="miniowt", help="preset name or YAML path (its backbone is probed)")
    probe.add_argument("--frames", type=int, default=10, help="frames per video")
    probe.add_argument("--json", default=None, help="write the report to this JSON file")

    fgt = sub.add_parser("forgetting", help="zero-shot accuracy of the VLM with each run's trained image tower")
    fgt.add_argument("--data", default=None, help="a MiniOWT world with a pretrain/ split (all categories)")
    fgt.add_argument("--lit", default=None,
                     help="the LiT VLM's weights: score on the cut-out world's catalogue instead of --data")
    fgt.add_argument("--runs", nargs="+", required=True, help="run folders (same backbone)")
    fgt.add_argument("--max-crops", type=int_at_least(1), default=2000, help="object crops scored (evenly spaced)")
    fgt.add_argument("--json", default=None, help="write the report to this JSON file")

    trk = sub.add_parser("tracker", help="sweep the tracker's thresholds on a validation world: OWTA / D.Re / A.Acc")
    trk.add_argument("--weights", default=None, help="run folder (default: the shipped checkpoint)")
    trk.add_argument("--data", required=True, help="validation world: an `effowt synth` folder or a TAO json")
    trk.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                     help="tracker field and values to sweep (repeatable; default det_thresh x init_thresh)")
    trk.add_argument("--out", default="benchmarks/tracker", help="folder for tracker-sweep.json / .md / .png")
    trk.add_argument("--device", default="cpu")

    for name, help_text in (("accuracy", "train, track and score side/head/full/lora on MiniOWT"),
                            ("ablation", "the paper's design questions on MiniOWT, with seeds")):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--world", default="mini", choices=["mini", "cutout-far", "cutout-near"],
                       help="the benchmark world: MiniOWT, or the cut-out world's far / near split "
                            "(default: %(default)s)")
        p.add_argument("--data", default=None,
                       help="an existing `effowt synth` folder (default: generate one in OUT/world)")
        p.add_argument("--budget", type=int, default=1500 if name == "accuracy" else 1000,
                       help="training steps per run")
        p.add_argument("--out", default=f"benchmarks/{name}", help="output folder (finished runs are reused)")
        p.add_argument("--device", default="cpu")
        p.add_argument("--workers", type=int, default=1, help="tracking processes per run")
        p.add_argument("--jobs", type=int, default=1,
                       help="experiments side by side (each on cpu_count / jobs threads)")
        p.add_argument("overrides", nargs="*", help="config overrides key=value (applied to every run)")
    acc = sub.choices["accuracy"]
    acc.add_argument("--modes", default="side,head,full,lora")
    acc.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 of each mode's chosen setting (test world)")
    acc.add_argument("--trials", type=int, default=6, help="tuning trials per mode (the first N points of its grid)")
    acc.add_argument("--grid", action="append", default=[], metavar="[MODE:]KEY=V1,V2",
                     help="replace or add a tuning axis (repeatable; without MODE: every mode)")
    acc.add_argument("--val-data", default=None,
                     help="an existing `effowt synth` folder for the validation world "
                          "(default: generate OUT/val-world)")
    sub.choices["ablation"].add_argument("--variants", default=None,
                                         help="comma-separated names (default: the claim-by-claim set; "
                                              "'all': every variant)")
    sub.choices["ablation"].add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per variant")
    for name, p in sub.choices.items():
        p.add_argument("--threads", type=int_at_least(1), default=None,
                       help="torch CPU threads per process (default: the cores this process may use"
                            + (", divided among --jobs)" if name in ("accuracy", "ablation") else ")"))


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _grid(items: list[str]) -> dict[str, list[Any]] | None:
    """``["det_thresh=0.2,0.3"]`` -> ``{"det_thresh": [0.2, 0.3]}`` (values parsed as YAML;
    keys may carry a ``tracker.`` prefix); None when empty."""
    import yaml

    grid = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not values:
            raise ConfigError(f"--grid {item!r} is not of the form KEY=V1,V2")
        grid[key.strip().removeprefix("tracker.")] = [yaml.safe_load(v) for v in values.split(",")]
    return grid or None


def _variants(specs: list[str]) -> dict[str, list[str]]:
    """``NAME:KEY=V KEY=V`` -> {NAME: [KEY=V, ...]} (ConfigError on a malformed or repeated name)."""
    out: dict[str, list[str]] = {}
    for spec in specs:
        name, sep, overrides = spec.partition(":")
        if not sep or not name.strip() or name.strip() in out:
            raise ConfigError(f"--variant {spec!r}: expected a new NAME:KEY=V [KEY=V ...]")
        out[name.strip()] = overrides.split()
    return out


def run(args: argparse.Namespace) -> int:
    if args.bench not in ("accuracy", "ablation"):  # those set it per experiment process
        from effowt.threads import set_threads

        set_threads(args.threads)
    if args.bench == "efficiency":
        from effowt.bench.efficiency import efficiency_markdown, run_efficiency

        report = run_efficiency(args.config, modes=_names(args.modes), image_size=args.image_size,
                                batch=args.batch, steps=args.steps, warmup=args.warmup, device=args.device,
                                out_dir=args.out, overrides=args.overrides)
        print(efficiency_markdown(report))
    elif args.bench == "speed":
        from effowt.bench.speed import run_speed, speed_markdown, write_speed

        report = run_speed(args.config, args.image_size, args.frames, args.warmup, args.device, args.overrides,
                           profile=args.profile, batch_frames=args.batch_frames, precision=args.precision,
                           repeats=args.repeats, variants=_variants(args.variant))
        if args.json:
            write_speed(report, args.json)
        print(speed_markdown(report))
    elif args.bench == "step":
        from effowt.bench.step_phases import run_step_profile, step_markdown
        from effowt.fileio import atomic_write_json

        report = run_step_profile(args.config, args.data, args.images, args.steps, args.warmup, args.device,
                                  args.overrides)
        if args.json:
            atomic_write_json(args.json, report)
        print(step_markdown([report]))
    elif args.bench == "probe":
        from effowt_paper.probe import probe_markdown, run_probe
        from effowt.fileio import atomic_write_json

        report = run_probe(args.gt, args.config, args.frames)
        if args.json:
            atomic_write_json(args.json, report)
        print(probe_markdown(report))
    elif args.bench == "forgetting":
        from effowt_paper.forgetting import (
            cutout_forgetting_markdown,
            forgetting_markdown,
            run_cutout_forgetting,
            run_forgetting,
        )
        from effowt.errors import ConfigError
        from effowt.fileio import atomic_write_json

        if (args.data is None) == (args.lit is None):
            raise ConfigError("bench forgetting: give --data (a MiniOWT world) or --lit (the cut-out world's LiT VLM)")
        if args.lit:
            report = run_cutout_forgetting(args.runs, args.lit)
        else:
            report = run_forgetting(args.data, args.runs, args.max_crops)
        if args.json:
            atomic_write_json(args.json, report)
        print(cutout_forgetting_markdown(report) if args.lit else forgetting_markdown(report))
    elif args.bench == "tracker":
        from effowt.bench.tracker_sweep import run_tracker_sweep, sweep_markdown

        report = run_tracker_sweep(args.weights, args.data, args.out, _grid(args.grid), args.device)
        print(sweep_markdown(report))
        print(f"wrote {Path(args.out) / 'tracker-sweep.json'}, tracker-sweep.md, tracker-sweep.png")
    elif args.bench == "accuracy":
        from effowt_paper.accuracy import accuracy_markdown, run_accuracy

        report = run_accuracy(args.out, modes=_names(args.modes), budget=args.budget, seeds=args.seeds,
                              trials=args.trials, grid=args.grid, data=args.data, val_data=args.val_data,
                              device=args.device, workers=args.workers, overrides=args.overrides, jobs=args.jobs,
                              world=args.world, threads=args.threads)
        print(accuracy_markdown(report))
        print(f"wrote {Path(args.out) / 'accuracy.json'}, accuracy.md, accuracy.png")
    else:
        from effowt_paper.ablation import CORE_VARIANTS, CUTOUT_VARIANTS, VARIANTS, ablation_markdown, run_ablation

        default = CORE_VARIANTS if args.world == "mini" else CUTOUT_VARIANTS
        names = list(VARIANTS) if args.variants == "all" else _names(args.variants) if args.variants else default
        report = run_ablation(args.out, names=names, seeds=args.seeds, budget=args.budget, data=args.data,
                              device=args.device, workers=args.workers, overrides=args.overrides, jobs=args.jobs,
                              world=args.world, threads=args.threads)
        print(ablation_markdown(report))
        print(f"wrote {Path(args.out) / 'ablation.json'}, ablation.md, ablation.png")
    return 0
