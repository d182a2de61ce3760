"""The MiniOWT benchmark worlds and the base config the accuracy and ablation benchmarks share.

Worlds are generated once per output folder with fixed ``effowt synth`` settings (or
an existing ``effowt synth`` folder is used via ``--data`` / ``--val-data``) so that
every mode / variant / seed trains on the same images and is scored on the same
videos. Two worlds, never mixed up:

* the **test world** (synth seed 0): its ``train/`` split trains every run, its
  ``val/`` videos give the reported numbers;
* the **validation world** (synth seed 1, videos only): the accuracy benchmark's
  tuning scores its trials here, so tuning never reads the test videos.

Reports name a world by its synth settings (:func:`describe_world`), never by a path.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from effowt.config import EffOWTConfig, apply_overrides, load_config
from effowt.data.miniowt import MiniOWTPaths

logger = logging.getLogger(__name__)

# `effowt synth --out DIR --seed 0 --size 128 --train-images 1000 --pretrain-images 0 --val-videos 8 --frames 40`
WORLD_SETTINGS = dict(seed=0, size=128, train_images=1000, pretrain_images=0, val_videos=8, frames=40)
# `effowt synth --out DIR --seed 1 --size 128 --train-images 0 --pretrain-images 0 --val-videos 8 --frames 40`
VALIDATION_WORLD_SETTINGS = {**WORLD_SETTINGS, "seed": 1, "train_images": 0}
BENCH_PRESET = "miniowt"


def ensure_world(folder: Path, data: str | Path | None, settings: dict[str, int] = WORLD_SETTINGS,
                 needs_train: bool = True) -> MiniOWTPaths:
    """A benchmark world: ``data`` when given (it must hold val/, and train/ when
    ``needs_train``), else ``folder``, generated with ``settings`` unless already there."""
    from effowt.data.miniowt import generate_miniowt

    world = MiniOWTPaths(Path(data) if data is not None else folder)
    if data is None and not world.val_json.is_file():
        logger.info("generating the MiniOWT world (synth seed %d) in %s", settings["seed"], folder)
        generate_miniowt(folder, **settings)
    return world.require(*(("train_json", "val_json") if needs_train else ("val_json",)))


def describe_world(world: MiniOWTPaths, needs_train: bool = True) -> dict[str, Any]:
    """``{"synth_seed", "size", "train_images", "val_videos", "frames"}`` read from the
    world's own json files: what ``effowt synth`` arguments remake it."""
    val = json.loads(world.val_json.read_text())
    frames = [img["frame_index"] for img in val["images"]]
    record: dict[str, Any] = {
        "synth_seed": val.get("info", {}).get("seed"),
        "size": val["images"][0]["width"] if val["images"] else None,
        "val_videos": len(val["videos"]),
        "frames": max(frames) + 1 if frames else 0,
    }
    if needs_train:
        record["train_images"] = len(json.loads(world.train_json.read_text())["images"])
    return record


def world_config(budget: int, seed: int, overrides: list[str] | tuple[str, ...] = ()) -> EffOWTConfig:
    """The ``miniowt`` preset (side mode on the shipped tiny VLM) with the step budget,
    the seed and the user's overrides applied."""
    cfg = load_config(BENCH_PRESET, [f"train.max_steps={budget}", f"train.seed={seed}"])
    return apply_overrides(cfg, list(overrides))
