"""The benchmark worlds, the base config and the options the accuracy and ablation
benchmarks share.

``--world`` names a :class:`BenchWorld` of :data:`BENCH_WORLDS`: ``mini`` (MiniOWT on
the tiny VLM, the ``miniowt`` preset), ``cutout-far`` and ``cutout-near`` (the
cut-out world's two splits on the LiT MobileNetV2 VLM, the ``cutout`` preset).

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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from effowt.config import EffOWTConfig, apply_overrides, load_config

if TYPE_CHECKING:
    import argparse

    from effowt.data.miniowt import MiniOWTPaths

logger = logging.getLogger(__name__)

# `effowt synth --out DIR --seed 0 --size 128 --train-images 1000 --pretrain-images 0 --val-videos 8 --frames 40`
WORLD_SETTINGS = dict(seed=0, size=128, train_images=1000, pretrain_images=0, val_videos=8, frames=40)
# `effowt synth --out DIR --seed 1 --size 128 --train-images 0 --pretrain-images 0 --val-videos 8 --frames 40`
VALIDATION_WORLD_SETTINGS = {**WORLD_SETTINGS, "seed": 1, "train_images": 0}
BENCH_PRESET = "miniowt"
# `effowt synth --world cutout --split SPLIT --out DIR --seed 0 --size 160 --train-images 1000
#  --val-videos 24 --frames 40`
CUTOUT_SETTINGS = dict(seed=0, size=160, train_images=1000, val_videos=24, frames=40)
# `effowt synth --world cutout --split SPLIT --out DIR --seed 1 --size 160 --train-images 0
#  --val-videos 12 --frames 40`
CUTOUT_VALIDATION_SETTINGS = {**CUTOUT_SETTINGS, "seed": 1, "train_images": 0, "val_videos": 12}


def _generate_miniowt(folder: Path, **settings: Any) -> None:
    from effowt.data.miniowt import generate_miniowt

    generate_miniowt(folder, **settings)


def _generate_cutout(folder: Path, **settings: Any) -> None:
    from effowt.data.cutout import generate_cutout_world

    generate_cutout_world(folder, **settings)


Grids = dict[str, dict[str, list[Any]]]
Target = tuple[str, str, str, float]

LEARNING_RATES = [1e-3, 3e-4, 3e-3]
# The accuracy benchmark's tuning grids, one per transfer mode. Axes in order; the last axis
# varies fastest, so `--trials 3` is the learning-rate sweep at each mode's first switch
# value. The first point of every grid is the preset's recipe.
MINI_GRIDS: Grids = {
    "side": {"model.side.output": ["residual", "replace"], "train.lr": LEARNING_RATES},
    "head": {"model.pyramid": ["simple", "linear"], "train.lr": LEARNING_RATES},
    "full": {"train.backbone_lr_mult": [0.1, 1.0], "train.lr": LEARNING_RATES},
    "lora": {"model.lora.rank": [8, 16], "train.lr": LEARNING_RATES},
}
# The cut-out worlds' backbone is a CNN: the preset's neck for head/full/lora is the FPN over
# its taps (model.pyramid=fpn), and head's switch tries ViTDet's one-map pyramid against it.
CUTOUT_GRIDS: Grids = {**MINI_GRIDS, "head": {"model.pyramid": ["fpn", "simple"], "train.lr": LEARNING_RATES}}
# The accuracy report's target comparisons (split, mode, other mode, margin in OWTA), from each
# world's issue: MiniOWT's "EffOWT must earn its claim"; the cut-out worlds' "a world where the
# pretrained model knows more than the detector is taught" (side beats full and head by 3 on unknown).
MINI_TARGETS: tuple[Target, ...] = (
    ("unknown", "side", "full", 0.0), ("unknown", "side", "head", 0.03), ("known", "side", "head", 0.0))
CUTOUT_TARGETS: tuple[Target, ...] = (
    ("unknown", "side", "full", 0.03), ("unknown", "side", "head", 0.03), ("known", "side", "head", 0.0))


@dataclass(frozen=True)
class BenchWorld:
    """A benchmark world: its name in report titles, its preset, the synth settings of
    its test world (whose ``train/`` trains every run) and of its validation world
    (videos only), its generator, the accuracy benchmark's tuning grids and its target
    comparisons."""

    name: str
    title: str
    preset: str
    settings: dict[str, Any]
    validation_settings: dict[str, Any]
    generate: Callable[..., None] = field(repr=False)
    grids: Grids = field(repr=False)
    targets: tuple[Target, ...] = field(repr=False)


BENCH_WORLDS: dict[str, BenchWorld] = {
    "mini": BenchWorld("mini", "MiniOWT", BENCH_PRESET, WORLD_SETTINGS, VALIDATION_WORLD_SETTINGS,
                       _generate_miniowt, MINI_GRIDS, MINI_TARGETS),
    **{
        f"cutout-{split}": BenchWorld(
            f"cutout-{split}", f"the cut-out world ({split} split)", "cutout", {**CUTOUT_SETTINGS, "split": split},
            {**CUTOUT_VALIDATION_SETTINGS, "split": split}, _generate_cutout, CUTOUT_GRIDS, CUTOUT_TARGETS,
        )
        for split in ("far", "near")
    },
}


def curve_steps(budget: int, points: int) -> tuple[int, ...]:
    """``points`` evenly spaced steps ending at ``budget`` (a multiple of ``points``; the
    caller checks it against its own option): the steps a benchmark scores along training."""
    return tuple(budget * i // points for i in range(1, points + 1))


def ensure_world(folder: Path, data: str | Path | None, settings: dict[str, Any] = WORLD_SETTINGS,
                 needs_train: bool = True, generate: Callable[..., None] = _generate_miniowt) -> MiniOWTPaths:
    """A benchmark world: ``data`` when given (it must hold val/, and train/ when
    ``needs_train``), else ``folder``, generated with ``generate(folder, **settings)``
    unless already there."""
    from effowt.data.miniowt import MiniOWTPaths

    world = MiniOWTPaths(Path(data) if data is not None else folder)
    if data is None and not world.val_json.is_file():
        logger.info("generating the benchmark world (synth seed %d) in %s", settings["seed"], folder)
        generate(folder, **settings)
    return world.require(*(("train_json", "val_json") if needs_train else ("val_json",)))


def describe_world(world: MiniOWTPaths, needs_train: bool = True) -> dict[str, Any]:
    """``{"synth_seed", "size", "train_images", "val_videos", "frames"}`` read from the
    world's own json files: what ``effowt synth`` arguments remake it."""
    val = json.loads(world.val_json.read_text())
    frames = [img["frame_index"] for img in val["images"]]
    info = val.get("info", {})
    record: dict[str, Any] = {
        **({"world": info["world"], "split": info.get("split")} if "world" in info else {}),
        "synth_seed": info.get("seed"),
        "size": val["images"][0]["width"] if val["images"] else None,
        "val_videos": len(val["videos"]),
        "frames": max(frames) + 1 if frames else 0,
    }
    if needs_train:
        record["train_images"] = len(json.loads(world.train_json.read_text())["images"])
    return record


def world_config(budget: int, seed: int, overrides: list[str] | tuple[str, ...] = (),
                 preset: str = BENCH_PRESET) -> EffOWTConfig:
    """The world's preset (``miniowt``: side mode on the shipped tiny VLM) with the
    step budget, the seed and the user's overrides applied."""
    cfg = load_config(preset, [f"train.max_steps={budget}", f"train.seed={seed}"])
    return apply_overrides(cfg, list(overrides))


def add_experiment_arguments(parser: argparse.ArgumentParser, out: str, budget: int) -> None:
    """The options of the benchmarks made of experiments (accuracy, ablation): the world,
    the training budget, the output folder (``out`` by default), the processes."""
    parser.add_argument("--world", default="mini", choices=list(BENCH_WORLDS),
                        help="the benchmark world: MiniOWT, or the cut-out world's far / near split "
                             "(default: %(default)s)")
    parser.add_argument("--data", default=None,
                        help="an existing `effowt synth` folder (default: generate one in OUT/world)")
    parser.add_argument("--budget", type=int, default=budget, help="training steps per run")
    parser.add_argument("--out", default=out, help="output folder (finished runs are reused)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, default=1, help="tracking processes per run")
    parser.add_argument("--jobs", type=int, default=1,
                        help="experiments side by side (each on cpu_count / jobs threads)")
    parser.add_argument("overrides", nargs="*", help="config overrides key=value (applied to every run)")
