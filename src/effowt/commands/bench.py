"""``effowt bench {efficiency,speed,accuracy,ablation}``: benchmarks with JSON + Markdown output."""

from __future__ import annotations

import argparse
from pathlib import Path

from effowt.commands import int_at_least
from effowt.tracking.tracker import PRECISIONS


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
    speed.add_argument("--image-size", type=int, default=224)
    speed.add_argument("--frames", type=int, default=10, help="timed frames (median reported)")
    speed.add_argument("--warmup", type=int, default=2)
    speed.add_argument("--device", default="cpu")
    speed.add_argument("--profile", action="store_true",
                       help="also time every side-network and head part (exclusive ms per part and layer type)")
    speed.add_argument("--batch-frames", type=int_at_least(1), default=1,
                       help="frames per model batch for frames_per_s (batch 1 is measured too, in the same run)")
    speed.add_argument("--repeats", type=int_at_least(1), default=3, help="throughput repeats (median reported)")
    speed.add_argument("--precision", choices=list(PRECISIONS), default="fp32",
                       help="precision of the frozen backbone and the side network")
    speed.add_argument("--threads", type=int_at_least(1), default=None, help="torch CPU threads (default: torch's)")
    speed.add_argument("--variant", action="append", default=[], metavar="NAME:KEY=V [KEY=V ...]",
                       help="also measure the config with these overrides, interleaved in the same run (repeatable)")
    speed.add_argument("--json", default=None, help="write the report to this JSON file")
    speed.add_argument("overrides", nargs="*", help="config overrides key=value")

    for name, help_text in (("accuracy", "train, track and score side/head/full/lora on MiniOWT"),
                            ("ablation", "the paper's design questions on MiniOWT, with seeds")):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--world", default="mini", choices=["mini"], help="the benchmark world (MiniOWT)")
        p.add_argument("--data", default=None, help="an existing `effowt synth` folder (default: generate one in OUT/world)")
        p.add_argument("--budget", type=int, default=1500 if name == "accuracy" else 1000, help="training steps per run")
        p.add_argument("--out", default=f"benchmarks/{name}", help="output folder (finished runs are reused)")
        p.add_argument("--device", default="cpu")
        p.add_argument("--workers", type=int, default=1, help="tracking processes per run")
        p.add_argument("overrides", nargs="*", help="config overrides key=value (applied to every run)")
    acc = sub.choices["accuracy"]
    acc.add_argument("--modes", default="side,head,full,lora")
    acc.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 of each mode's chosen setting (test world)")
    acc.add_argument("--trials", type=int, default=6, help="tuning trials per mode (the first N points of its grid)")
    acc.add_argument("--grid", action="append", default=[], metavar="[MODE:]KEY=V1,V2",
                     help="replace or add a tuning axis (repeatable; without MODE: every mode)")
    acc.add_argument("--val-data", default=None,
                     help="an existing `effowt synth` folder for the validation world (default: generate OUT/val-world)")
    sub.choices["ablation"].add_argument("--variants", default=None,
                                         help="comma-separated names (default: the claim-by-claim set; 'all': every variant)")
    sub.choices["ablation"].add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per variant")


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _variants(specs: list[str]) -> dict[str, list[str]]:
    """``NAME:KEY=V KEY=V`` -> {NAME: [KEY=V, ...]} (ConfigError on a malformed or repeated name)."""
    from effowt.errors import ConfigError

    out: dict[str, list[str]] = {}
    for spec in specs:
        name, sep, overrides = spec.partition(":")
        if not sep or not name.strip() or name.strip() in out:
            raise ConfigError(f"--variant {spec!r}: expected a new NAME:KEY=V [KEY=V ...]")
        out[name.strip()] = overrides.split()
    return out


def run(args: argparse.Namespace) -> int:
    if args.bench == "efficiency":
        from effowt.bench.efficiency import efficiency_markdown, run_efficiency

        report = run_efficiency(args.config, _names(args.modes), args.image_size, args.batch, args.steps,
                                args.warmup, args.device, args.out, args.overrides)
        print(efficiency_markdown(report))
    elif args.bench == "speed":
        import torch

        from effowt.bench.speed import run_speed, speed_markdown, write_speed

        if args.threads:
            torch.set_num_threads(args.threads)
        report = run_speed(args.config, args.image_size, args.frames, args.warmup, args.device, args.overrides,
                           profile=args.profile, batch_frames=args.batch_frames, precision=args.precision,
                           repeats=args.repeats, variants=_variants(args.variant))
        if args.json:
            write_speed(report, args.json)
        print(speed_markdown(report))
    elif args.bench == "accuracy":
        from effowt.bench.accuracy import accuracy_markdown, run_accuracy

        report = run_accuracy(args.out, _names(args.modes), args.budget, seeds=args.seeds, trials=args.trials,
                              grid=args.grid, data=args.data, val_data=args.val_data, device=args.device,
                              workers=args.workers, overrides=args.overrides)
        print(accuracy_markdown(report))
        print(f"wrote {Path(args.out) / 'accuracy.json'}, accuracy.md, accuracy.png")
    else:
        from effowt.bench.ablation import CORE_VARIANTS, VARIANTS, ablation_markdown, run_ablation

        names = list(VARIANTS) if args.variants == "all" else _names(args.variants) if args.variants else CORE_VARIANTS
        report = run_ablation(args.out, names, args.seeds, args.budget, args.data, args.device, args.workers,
                              args.overrides)
        print(ablation_markdown(report))
        print(f"wrote {Path(args.out) / 'ablation.json'}, ablation.md, ablation.png")
    return 0
