"""The folder layout of a MiniOWT world: the one place it is spelled out."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from effowt.errors import DataError

SOURCE_MARK = "MiniOWT"  # how every MiniOWT json's ``info.description`` starts


@dataclass(frozen=True)
class MiniOWTPaths:
    """Where the files of the MiniOWT world under ``root`` live::

        train/annotations.json, train/images/<000000>.png        COCO, known categories
        pretrain/annotations.json, pretrain/images/<000000>.png  COCO, all categories
        val/annotations.json                                     TAO, all categories
        val/frames/<video>/<000000>.png, val/videos/<video>.mp4

    :func:`~effowt.data.miniowt.generate_miniowt` writes there and returns this
    object; everything that reads a world takes it.
    """

    root: Path

    @property
    def train_json(self) -> Path:
        return self.root / "train" / "annotations.json"

    @property
    def train_images(self) -> Path:
        return self.root / "train" / "images"

    @property
    def pretrain_json(self) -> Path:
        return self.root / "pretrain" / "annotations.json"

    @property
    def pretrain_images(self) -> Path:
        return self.root / "pretrain" / "images"

    @property
    def val_json(self) -> Path:
        return self.root / "val" / "annotations.json"

    @property
    def val_frames(self) -> Path:
        return self.root / "val" / "frames"

    @property
    def val_videos(self) -> Path:
        return self.root / "val" / "videos"

    def val_frame(self, video: str, index: int) -> Path:
        """PNG of frame ``index`` (0-based) of val video ``video``."""
        return self.val_frames / video / f"{index:06d}.png"

    def val_video(self, video: str) -> Path:
        """mp4 of val video ``video``."""
        return self.val_videos / f"{video}.mp4"

    def as_dict(self) -> dict[str, Path]:
        """``{"train_json": ..., ..., "val_videos": ...}``: every folder and json."""
        names = ("train_json", "train_images", "pretrain_json", "pretrain_images",
                 "val_json", "val_frames", "val_videos")
        return {name: getattr(self, name) for name in names}

    def require(self, *names: str) -> MiniOWTPaths:
        """Return ``self`` when the named files exist (e.g. ``"train_json"``), else a
        ``DataError`` naming the first missing one."""
        for name in names:
            path = getattr(self, name)
            if not path.exists():
                raise DataError(f"{self.root}: not a MiniOWT folder ({path} missing; make one with `effowt synth`)")
        return self


def is_miniowt_source(path: str | os.PathLike) -> bool:
    """Whether ``path`` (a TAO json, a video file or a frame folder) belongs to a MiniOWT
    world: the json itself, or an ``annotations.json`` in the path's folder or up to
    three folders above it, has an ``info.description`` starting with :data:`SOURCE_MARK`."""
    path = Path(path).resolve()
    candidates = [path] if path.suffix.lower() == ".json" else \
        [folder / "annotations.json" for folder in [path, *path.parents][:4]]
    for candidate in candidates:
        try:
            info = json.loads(candidate.read_text(encoding="utf-8")).get("info", {})
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(info, dict) and str(info.get("description", "")).startswith(SOURCE_MARK):
            return True
    return False
