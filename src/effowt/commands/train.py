"""``effowt train``: train a transfer mode on COCO-format data into a run folder.

Also the entry of multi-process training:
``torchrun --nproc_per_node=K -m effowt train ...``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from effowt.config import TRANSFER_MODES, load_config
from effowt.errors import ConfigError
from effowt.runs import CONFIG_FILE
from effowt.training.trainer import train


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="preset name (mini, clip-b16, paper) or YAML file; "
                        "with --resume defaults to RUN/config.yaml")
    parser.add_argument("--data", required=True, help="COCO-format annotation json")
    parser.add_argument("--images", required=True, help="folder of the json's images")
    parser.add_argument("--out", required=True, help="run folder (created; checkpoints, metrics, plots)")
    parser.add_argument("--mode", choices=TRANSFER_MODES, help="transfer mode (overrides model.mode)")
    parser.add_argument("--max-steps", type=int, help="optimizer steps (overrides train.max_steps)")
    parser.add_argument("--resume", action="store_true", help="continue the checkpoint in --out exactly")
    parser.add_argument("--backbone-weights", help="local backbone weight file (overrides model.backbone.weights)")
    parser.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda when available")
    parser.add_argument(
        "overrides", nargs="*", metavar="key=value",
        help="config overrides after the options, values parsed as YAML, e.g. train.lr=0.0001 train.accumulate=2",
    )


def run(args: argparse.Namespace) -> int:
    source = args.config
    if source is None:
        if not args.resume:
            raise ConfigError("--config is required (unless --resume, which reads RUN/config.yaml)")
        source = str(Path(args.out) / CONFIG_FILE)
    cfg = load_config(source, args.overrides)
    if args.mode is not None:
        cfg.model.mode = args.mode
    if args.max_steps is not None:
        cfg.train.max_steps = args.max_steps
    if args.backbone_weights is not None:
        cfg.model.backbone.weights = args.backbone_weights
    train(cfg, args.data, args.images, args.out, resume=args.resume, device=args.device)
    return 0
