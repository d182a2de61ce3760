"""``generate_cutout_world``: a split of the cut-out world from a seed."""

from __future__ import annotations

import os
from pathlib import Path

from tqdm import tqdm

from effowt.data.cutout.catalogue import read_catalogue
from effowt.data.cutout.world import CutoutScene, place_in_split
from effowt.data.miniowt.generator import replace_old_world
from effowt.data.miniowt.layout import MiniOWTPaths
from effowt.data.miniowt.splits import write_coco_split, write_val_split
from effowt.progress import bar_disable

SOURCE_MARK = "CutoutOWT"  # how every cut-out world json's ``info.description`` starts
MAX_SIZE = 1024
TRAIN_ANNOTATES = ("known", "all")


def generate_cutout_world(
    out_dir: str | os.PathLike,
    split: str = "far",
    seed: int = 0,
    size: int = 160,
    train_images: int = 1000,
    val_videos: int = 24,
    frames: int = 40,
    stamps_root: str | os.PathLike | None = None,
    clipart_root: str | os.PathLike | None = None,
    progress: bool | None = None,
    train_annotates: str = "known",
) -> MiniOWTPaths:
    """Generate one split of the cut-out world under ``out_dir`` in MiniOWT's layout
    (``train/`` COCO with the split's known categories annotated, ``val/`` TAO videos
    with every category annotated; no ``pretrain/``: the LiT VLM learns from the
    catalogue itself, :mod:`effowt.lit`).

    Motion, occlusion, the visible-box rule, camera motion and the lossless mp4s are
    MiniOWT's (:mod:`effowt.data.miniowt`); the objects are real cut-outs
    (:mod:`effowt.data.cutout.world`). The images do not depend on the split (the
    same seed draws the same objects; only the annotations and ids differ).
    Deterministic: the same arguments and packages give byte-identical files. An
    older world in ``out_dir`` is replaced (:func:`~effowt.data.miniowt.generator.replace_old_world`).

    ``train_annotates``: ``known`` (the open-world protocol: unknown objects appear in
    ``train/`` unannotated) or ``all`` (every object annotated: a detector that learns
    every category of the world, for a shipped model rather than a benchmark; the same
    images, and ``val/`` unchanged).
    """
    if train_annotates not in TRAIN_ANNOTATES:
        raise ValueError(f"--train-annotates: {train_annotates!r} is not one of {', '.join(TRAIN_ANNOTATES)}")
    if not 32 <= size <= MAX_SIZE:
        raise ValueError(f"--size must be in [32, {MAX_SIZE}], got {size}")
    for arg, value in (("--train-images", train_images), ("--val-videos", val_videos), ("--frames", frames)):
        if value < 0:
            raise ValueError(f"{arg} must be >= 0, got {value}")
    if val_videos and frames < 1:
        raise ValueError(f"--frames must be >= 1 when --val-videos > 0, got {frames}")
    scene = CutoutScene(place_in_split(read_catalogue(stamps_root, clipart_root), split), split)
    paths = MiniOWTPaths(Path(out_dir))
    replace_old_world(paths)
    info = {"world": "cutout", "split": split, "categories": len(scene.categories)}
    train_info = {**info, "train_annotates": train_annotates} if train_annotates != "known" else info
    disable = bar_disable() if progress is None else not progress
    with tqdm(total=train_images + val_videos * frames, desc=f"cut-out {split}", unit="img",
              disable=disable) as bar:
        write_coco_split(
            paths.train_json, paths.train_images, seed, "train", train_images, size,
            known_only=train_annotates == "known", bar=bar, scene=scene, mark=SOURCE_MARK, info=train_info,
            min_objects=2, max_objects=8, min_rel=0.12, max_rel=0.4, inside=False,
        )
        write_val_split(paths, seed, val_videos, frames, size, bar, scene=scene, mark=SOURCE_MARK, info=info)
    return paths
