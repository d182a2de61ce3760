"""``generate_miniowt``: the whole MiniOWT world from a seed."""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

from tqdm import tqdm

from effowt.data.miniowt.layout import MiniOWTPaths
from effowt.data.miniowt.splits import write_coco_split, write_val_split
from effowt.errors import OutputError
from effowt.progress import bar_disable

# argument -> (lowest, highest) value generate_miniowt accepts; the highs keep one
# world within memory and disk of a workstation (a 2048 px image is 12 MB in memory)
LIMITS: dict[str, tuple[int, int]] = {
    "seed": (0, 2**32 - 1), "size": (32, 2048), "train_images": (0, 1_000_000),
    "pretrain_images": (0, 1_000_000), "val_videos": (0, 10_000), "frames": (0, 10_000),
}
# what each split folder of a world holds (layout.MiniOWTPaths)
WORLD_FILES = {"train": {"annotations.json", "images"}, "pretrain": {"annotations.json", "images"},
               "val": {"annotations.json", "frames", "videos"}}


def check_world_args(**values: int) -> None:
    """ValueError naming the first argument outside :data:`LIMITS`."""
    for arg, value in values.items():
        low, high = LIMITS[arg]
        if not low <= value <= high:
            raise ValueError(f"{arg} must be in [{low}, {high}], got {value}")


def replace_old_world(paths: MiniOWTPaths) -> None:
    """:func:`clear_old_world`, with one warning naming what was removed (a world
    generator calls it before it writes anything)."""
    cleared = clear_old_world(paths)
    if cleared:
        warnings.warn(f"{paths.root}: replaced the older world there (removed "
                      f"{', '.join(p.name + '/' for p in cleared)})", UserWarning, stacklevel=3)


def clear_old_world(paths: MiniOWTPaths) -> list[Path]:
    """Remove the split folders (``train/``, ``pretrain/``, ``val/``) of an older world
    under ``paths.root``, so no old image, frame or video stays beside the new json;
    returns the folders removed. OutputError, removing nothing, when a split folder
    holds anything a world does not (the folder is not a MiniOWT world)."""
    old = []
    for split, names in WORLD_FILES.items():
        folder = paths.root / split
        if not folder.exists():
            continue
        foreign = sorted(p.name for p in folder.iterdir() if p.name not in names) if folder.is_dir() else ["."]
        if foreign:
            raise OutputError(f"{folder}: holds {foreign[0]!r}, which is not part of a MiniOWT world; "
                              "choose another output folder (an older world there would be replaced)")
        old.append(folder)
    for folder in old:
        shutil.rmtree(folder)
    return old


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
    Arguments outside :data:`LIMITS` are a ValueError before anything is written. An
    older world in ``out_dir`` is replaced: its split folders are removed first, with
    a warning naming them (:func:`clear_old_world`; OutputError for a folder that is
    not a world).
    """
    check_world_args(seed=seed, size=size, train_images=train_images, pretrain_images=pretrain_images,
                     val_videos=val_videos, frames=frames)
    if val_videos and frames < 1:
        raise ValueError(f"frames must be >= 1 when val_videos > 0, got {frames}")
    paths = MiniOWTPaths(Path(out_dir))
    replace_old_world(paths)
    total = train_images + pretrain_images + val_videos * frames
    disable = bar_disable() if progress is None else not progress
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
