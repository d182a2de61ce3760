"""The MiniOWT benchmark world and the base config the accuracy and ablation benchmarks share.

The world is generated once per output folder with fixed settings (or an existing
``effowt synth`` folder is used via ``--data``) so that every mode / variant / seed
trains on the same images and is scored on the same val split.
"""

from __future__ import annotations

import logging
from pathlib import Path

from effowt.config import EffOWTConfig, apply_overrides, load_config
from effowt.data.miniowt import MiniOWTPaths

logger = logging.getLogger(__name__)

# `effowt synth --out DIR --seed 0 --size 128 --train-images 1000 --pretrain-images 0 --val-videos 8 --frames 40`
WORLD_SETTINGS = dict(seed=0, size=128, train_images=1000, pretrain_images=0, val_videos=8, frames=40)
BENCH_PRESET = "miniowt"


def ensure_world(folder: Path, data: str | Path | None) -> MiniOWTPaths:
    """The benchmark world: ``data`` when given (it must hold train/ and val/), else
    ``folder``, generated with :data:`WORLD_SETTINGS` unless already there."""
    from effowt.data.miniowt import generate_miniowt

    if data is not None:
        return MiniOWTPaths(Path(data)).require("train_json", "val_json")
    world = MiniOWTPaths(folder)
    if not world.val_json.is_file():
        logger.info("generating the MiniOWT world in %s", folder)
        return generate_miniowt(folder, **WORLD_SETTINGS)
    return world


def world_config(budget: int, seed: int, overrides: list[str] | tuple[str, ...] = ()) -> EffOWTConfig:
    """The ``miniowt`` preset (side mode on the shipped tiny VLM) with the step budget,
    the seed and the user's overrides applied."""
    cfg = load_config(BENCH_PRESET, [f"train.max_steps={budget}", f"train.seed={seed}"])
    return apply_overrides(cfg, list(overrides))
