"""``generate_miniowt``: the whole MiniOWT world from a seed."""

from __future__ import annotations

import os
from pathlib import Path

from tqdm import tqdm

from effowt.data.miniowt.layout import MiniOWTPaths
from effowt.data.miniowt.splits import write_coco_split, write_val_split


def generate_miniowt(
    out_dir: str | os.PathLike,
    seed: int = 0,
    size: int = 256,
    train_images: int = 1000,
    pretrain_images: int = 1000,
    val_videos: int = 8,
    frames: int = 48,
    progress: bool | None = None,
) -> MiniOWTPaths:
    """Generate the MiniOWT world under ``out_dir`` (see :mod:`effowt.data.miniowt`).

    Deterministic: the same arguments give byte-identical files. ``progress``
    shows a tqdm bar (``None``: only on a terminal). Returns where the files are.
    """
    if size < 32:
        raise ValueError(f"size must be >= 32, got {size}")
    for arg, value in (("train_images", train_images), ("pretrain_images", pretrain_images),
                       ("val_videos", val_videos), ("frames", frames)):
        if value < 0:
            raise ValueError(f"{arg} must be >= 0, got {value}")
    if val_videos and frames < 1:
        raise ValueError(f"frames must be >= 1 when val_videos > 0, got {frames}")
    paths = MiniOWTPaths(Path(out_dir))
    total = train_images + pretrain_images + val_videos * frames
    disable = None if progress is None else not progress
    with tqdm(total=total, desc="MiniOWT", unit="img", disable=disable) as bar:
        write_coco_split(
            paths.train_json, paths.train_images, seed, "train", train_images, size, known_only=True, bar=bar,
            min_objects=2, max_objects=8, min_rel=0.08, max_rel=0.3, inside=False,
        )
        write_coco_split(
            paths.pretrain_json, paths.pretrain_images, seed, "pretrain", pretrain_images, size, known_only=False,
            bar=bar,
            min_objects=1, max_objects=4, min_rel=0.2, max_rel=0.45, inside=True,
        )
        write_val_split(paths, seed, val_videos, frames, size, bar)
    return paths
