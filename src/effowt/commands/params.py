"""``effowt params``: total and trainable parameters per transfer mode.

Counts come from models built on the ``meta`` device (exact, instant, no
weights needed). ``trainable_pct_of_full`` is a mode's trainable parameters as
a percentage of full fine-tuning's (the paper reports 1.3 % for EffOWT).
"""

from __future__ import annotations

import argparse
import json

from effowt.config import TRANSFER_MODES, load_config, preset_names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="paper", help=f"preset name ({', '.join(preset_names())}) or YAML path")
    parser.add_argument("--mode", choices=TRANSFER_MODES, action="append",
                        help="transfer mode to count (repeatable; default: all four)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("overrides", nargs="*", help="config overrides section.key=value")


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, args.overrides)
    from effowt.models.params import parameter_report  # torch, once the config is good

    report = parameter_report(cfg.model, tuple(args.mode or TRANSFER_MODES))
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"config {args.config}: backbone {cfg.model.backbone.name}")
    print(f"{'mode':<6} {'total':>14} {'trainable':>14} {'% of full':>10}")
    for mode in args.mode or TRANSFER_MODES:
        row = report[mode]
        print(f"{mode:<6} {row['total']:>14,} {row['trainable']:>14,} {row['trainable_pct_of_full']:>10.3f}")
    heads = report["heads"]
    print(f"heads: detection {heads['detection']:,} + reid {heads['reid']:,} = {heads['total']:,}")
    if "side_split_pct" in report:
        split = report["side_split_pct"]
        print("side stages (% of stage parameters): " + ", ".join(f"{k} {v:.1f}" for k, v in split.items()))
    return 0
