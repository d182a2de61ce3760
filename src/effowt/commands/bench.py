"""``effowt bench {efficiency,speed,accuracy,ablation}``: benchmarks with JSON + Markdown output."""

from __future__ import annotations

import argparse


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


def run(args: argparse.Namespace) -> int:
    if args.bench == "efficiency":
        from effowt.bench.efficiency import efficiency_markdown, run_efficiency

        modes = [m.strip() for m in args.modes.split(",") if m.strip()]
        report = run_efficiency(args.config, modes, args.image_size, args.batch, args.steps, args.warmup, args.device, args.out, args.overrides)
        print(efficiency_markdown(report))
    return 0
