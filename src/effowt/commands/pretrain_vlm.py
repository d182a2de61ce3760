"""``effowt pretrain-vlm``: pretrain the tiny CLIP-style VLM on MiniOWT ``pretrain/``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from effowt.data.miniowt import MiniOWTPaths
from effowt.errors import DataError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # defaults (None): effowt.vlm.PretrainConfig's, which make the shipped model
    parser.add_argument("--data", required=True, help="MiniOWT folder (made by `effowt synth`)")
    parser.add_argument("--out", required=True, help="output folder for the VLM weights")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--seed", type=int, default=None)


def known_category_ids(train_json: Path) -> set[int]:
    """Categories annotated in MiniOWT ``train/`` are the known ones."""
    try:
        data = json.loads(train_json.read_text())
        return {int(a["category_id"]) for a in data["annotations"]}
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise DataError(f"{train_json}: malformed COCO json ({err})") from None


def run(args: argparse.Namespace) -> int:
    world = MiniOWTPaths(Path(args.data)).require("train_json", "pretrain_json")
    from effowt.vlm import VLM_WEIGHTS_FILE, PretrainConfig, pretrain_vlm  # torch, once the paths are good

    given = {"steps": args.steps, "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed}
    cfg = PretrainConfig(**{k: v for k, v in given.items() if v is not None})
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
