"""TAO / TAO-OW annotation reader.

A TAO json holds ``videos``, ``images`` (each with ``video_id``,
``frame_index``, ``file_name``), ``annotations`` (``image_id``, ``track_id``,
``category_id``, ``bbox`` as ``[x, y, w, h]``), ``tracks`` and ``categories``.
:class:`TaoDataset` validates it and gives each video's frames in
``frame_index`` order with their ground truth as ``[x1, y1, x2, y2]`` pixel boxes.
Frame files are resolved relative to ``frames_root``, by default the json's
folder (for the official TAO layout pass the ``frames/`` folder).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from effowt.errors import DataError

GT_KEYS = ("annotations", "tracks", "categories")


@dataclass(frozen=True)
class TaoFrame:
    """One frame and its ground truth: ``boxes`` float32[N, 4] ``[x1, y1, x2, y2]`` px,
    ``track_ids`` and ``category_ids`` int64[N]."""

    image_id: int
    frame_index: int
    path: Path
    width: int | None
    height: int | None
    boxes: np.ndarray
    track_ids: np.ndarray
    category_ids: np.ndarray


@dataclass(frozen=True)
class TaoVideo:
    """A video: its id, name and frames sorted by ``frame_index``."""

    id: int
    name: str
    frames: list[TaoFrame]

    def tracks(self) -> dict[int, dict[int, np.ndarray]]:
        """``{track_id: {frame_index: box [x1, y1, x2, y2]}}`` over this video."""
        out: dict[int, dict[int, np.ndarray]] = {}
        for frame in self.frames:
            for tid, box in zip(frame.track_ids.tolist(), frame.boxes):
                out.setdefault(tid, {})[frame.frame_index] = box
        return out


def _need(obj: Any, keys: tuple[str, ...], where: str) -> None:
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected an object, got {type(obj).__name__}")
    missing = [k for k in keys if k not in obj]
    if missing:
        raise DataError(f"{where}: missing key(s) {', '.join(missing)}")


class TaoDataset:
    """Validated TAO / TAO-OW split.

    Args:
        json_path: the TAO json file.
        frames_root: folder that ``images[*].file_name`` are relative to
            (default: the json's folder).
        require_gt: if False, ``annotations``, ``tracks`` and ``categories`` may
            be absent (an unannotated split to track); they are then empty.

    Raises:
        DataError naming the file and the offending entry: a missing file or
        top-level key, invalid json, an image of an unknown video, an
        annotation of an unknown image or with a non-positive width / height,
        a repeated id or frame index.
    """

    def __init__(
        self, json_path: str | os.PathLike, frames_root: str | os.PathLike | None = None,
        require_gt: bool = True,
    ) -> None:
        self.json_path = Path(json_path)
        self.frames_root = Path(frames_root) if frames_root is not None else self.json_path.parent
        if not self.json_path.is_file():
            raise DataError(f"{self.json_path}: TAO json not found")
        try:
            data = json.loads(self.json_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise DataError(f"{self.json_path}: not valid json: {err}") from None
        src = str(self.json_path)
        _need(data, ("videos", "images") + (GT_KEYS if require_gt else ()), src)
        self.categories: dict[int, dict[str, Any]] = {}
        for i, cat in enumerate(data.get("categories", [])):
            _need(cat, ("id", "name"), f"{src}: categories[{i}]")
            self.categories[int(cat["id"])] = cat
        self.tracks: dict[int, dict[str, Any]] = {}
        for i, track in enumerate(data.get("tracks", [])):
            _need(track, ("id", "category_id", "video_id"), f"{src}: tracks[{i}]")
            self.tracks[int(track["id"])] = track
        self.videos = self._build_videos(data, src)

    def _build_videos(self, data: dict[str, Any], src: str) -> list[TaoVideo]:
        videos: dict[int, dict[str, Any]] = {}
        for i, video in enumerate(data["videos"]):
            _need(video, ("id", "name"), f"{src}: videos[{i}]")
            if int(video["id"]) in videos:
                raise DataError(f"{src}: videos[{i}]: repeated video id {video['id']}")
            videos[int(video["id"])] = video
        images: dict[int, dict[str, Any]] = {}
        frame_slots: set[tuple[int, int]] = set()
        for i, image in enumerate(data["images"]):
            where = f"{src}: images[{i}]"
            _need(image, ("id", "video_id", "frame_index", "file_name"), where)
            if int(image["video_id"]) not in videos:
                raise DataError(f"{where} (id {image['id']}): unknown video_id {image['video_id']}")
            if int(image["id"]) in images:
                raise DataError(f"{where}: repeated image id {image['id']}")
            slot = (int(image["video_id"]), int(image["frame_index"]))
            if slot in frame_slots:
                raise DataError(
                    f"{where} (id {image['id']}): repeated frame_index {slot[1]} in video {slot[0]}"
                )
            frame_slots.add(slot)
            images[int(image["id"])] = image
        per_image: dict[int, list[tuple[list[float], int, int]]] = {k: [] for k in images}
        for i, ann in enumerate(data.get("annotations", [])):
            where = f"{src}: annotations[{i}]"
            _need(ann, ("image_id", "bbox", "track_id", "category_id"), where)
            ident = f"{where} (id {ann.get('id')})"
            if int(ann["image_id"]) not in images:
                raise DataError(f"{ident}: unknown image_id {ann['image_id']}")
            bbox = ann["bbox"]
            if not (isinstance(bbox, list) and len(bbox) == 4
                    and all(isinstance(v, (int, float)) for v in bbox)):
                raise DataError(f"{ident}: bbox must be [x, y, w, h] numbers, got {bbox!r}")
            if bbox[2] <= 0 or bbox[3] <= 0:
                raise DataError(f"{ident}: bbox width and height must be > 0, got {bbox}")
            x, y, w, h = (float(v) for v in bbox)
            per_image[int(ann["image_id"])].append(
                ([x, y, x + w, y + h], int(ann["track_id"]), int(ann["category_id"]))
            )
        frames: dict[int, list[TaoFrame]] = {vid: [] for vid in videos}
        for image_id, image in images.items():
            anns = per_image[image_id]
            frames[int(image["video_id"])].append(TaoFrame(
                image_id=image_id,
                frame_index=int(image["frame_index"]),
                path=self.frames_root / image["file_name"],
                width=image.get("width"),
                height=image.get("height"),
                boxes=np.array([a[0] for a in anns], np.float32).reshape(-1, 4),
                track_ids=np.array([a[1] for a in anns], np.int64),
                category_ids=np.array([a[2] for a in anns], np.int64),
            ))
        return [
            TaoVideo(id=vid, name=str(video["name"]), frames=sorted(frames[vid], key=lambda f: f.frame_index))
            for vid, video in videos.items()
        ]

    def __len__(self) -> int:
        """Number of videos."""
        return len(self.videos)

    def __getitem__(self, index: int) -> TaoVideo:
        return self.videos[index]

    def __iter__(self) -> Iterator[TaoVideo]:
        return iter(self.videos)

    def missing_frames(self) -> list[Path]:
        """Frame files referenced by the json that do not exist on disk."""
        return [f.path for v in self.videos for f in v.frames if not f.path.is_file()]
