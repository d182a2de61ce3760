"""``effowt pretrain-vlm``: pretrain the tiny CLIP-style VLM on MiniOWT ``pretrain/``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from effowt.commands import int_at_least, positive_float
from effowt.errors import DataError
from effowt.fileio import prepare_output_dir
from effowt.pretrain_config import PretrainConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = PretrainConfig()
    parser.add_argument("--data", required=True, help="MiniOWT folder (made by `effowt synth`)")
    parser.add_argument("--out", required=True, help="output folder for the VLM weights")
    parser.add_argument("--steps", type=int_at_least(1), default=defaults.steps, help="optimizer steps")
    parser.add_argument("--batch-size", type=int_at_least(1), default=defaults.batch_size,
                        help="image-text pairs per step (the contrastive loss's batch)")
    parser.add_argument("--lr", type=positive_float, default=defaults.lr, help="AdamW learning rate")
    parser.add_argument("--seed", type=int, default=defaults.seed,
                        help="random seed of the initialisation, the batches and the held-out split")


def known_category_ids(train_json: Path) -> set[int]:
    """Categories annotated in MiniOWT ``train/`` are the known ones."""
    try:
        data = json.loads(train_json.read_text())
        return {int(a["category_id"]) for a in data["annotations"]}
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise DataError(f"{train_json}: malformed COCO json ({err})") from None


def run(args: argparse.Namespace) -> int:
    from effowt.data.miniowt import MiniOWTPaths

    world = MiniOWTPaths(Path(args.data)).require("train_json", "pretrain_json")
    prepare_output_dir(args.out)  # an empty --out is an error, not the current folder
    from effowt.vlm import VLM_WEIGHTS_FILE, pretrain_vlm  # torch, once the paths are good

    cfg = PretrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    result = pretrain_vlm(
        world.pretrain_json,
        world.pretrain_images,
        args.out,
        cfg,
        known_ids=known_category_ids(world.train_json),
    )
    acc = result["zero_shot_acc"]
    print(f"wrote {Path(args.out) / VLM_WEIGHTS_FILE} ({result['train_s']:.0f} s)")
    print("zero-shot accuracy on held-out crops: " + ", ".join(f"{k} {v:.1%}" for k, v in acc.items()))
    return 0
