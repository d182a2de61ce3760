"""The TAO / TAO-OW formats: ground-truth json and results json, their one schema,
validators and readers.

Ground truth: a json object with ``videos``, ``images`` (each with ``video_id``,
``frame_index``), ``annotations`` (``image_id``, ``track_id``, ``category_id``,
``bbox`` as ``[x, y, w, h]``), ``tracks`` and ``categories``
(:data:`GT_FIELDS`); reading frames needs ``images[*].file_name``
(:data:`FRAME_FIELDS`), TrackEval's ``TAO_OW`` needs a few more
(:data:`EVAL_FIELDS`). :func:`validate_gt` checks all of it.

Results: a flat json list of ``{"image_id", "track_id", "bbox": [x, y, w, h],
"score"}`` records (:data:`RESULT_FIELDS`), optionally with ``video_id`` (it
must then match the ground truth's) and ``category_id`` (every box is class 1:
tracking is class-agnostic); :func:`validate_results` checks them and fills
both in. Tracking writes this format (``effowt.tracking.writers``), evaluation
reads it.

:class:`TaoDataset` gives each video's frames in ``frame_index`` order with
their ground truth as ``[x1, y1, x2, y2]`` pixel boxes. Frame files are resolved
relative to ``frames_root``, by default the json's folder (for the official TAO
layout pass the ``frames/`` folder).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from effowt.errors import DataError
from effowt.fileio import read_json

if TYPE_CHECKING:
    import numpy as np

GT_KEYS = ("annotations", "tracks", "categories")
GT_FIELDS: dict[str, tuple[str, ...]] = {
    "videos": ("id", "name"),
    "images": ("id", "video_id", "frame_index"),
    "annotations": ("image_id", "track_id", "bbox", "category_id"),
    "tracks": ("id", "category_id", "video_id"),
    "categories": ("id", "name"),
}
"""Fields of each ground-truth section that every reader needs."""
FRAME_FIELDS: dict[str, tuple[str, ...]] = {"images": ("file_name",)}
"""Added to :data:`GT_FIELDS` when the frames are read (tracking a split)."""
EVAL_FIELDS: dict[str, tuple[str, ...]] = {
    "videos": ("neg_category_ids", "not_exhaustive_category_ids"),
    "annotations": ("id", "video_id"),
}
"""Added to :data:`GT_FIELDS` for TrackEval's ``TAO_OW`` (evaluation)."""
MAX_BOX_PX = 1e6  # no frame is a million pixels wide: larger box values are corrupt
RESULT_FIELDS = ("image_id", "track_id", "bbox", "score")
"""Fields every results record needs; ``video_id`` and ``category_id`` are optional."""


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


def _finite_numbers(values: Any, count: int, bound: float = math.inf) -> bool:
    return isinstance(values, (list, tuple)) and len(values) == count and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and abs(v) <= bound
        for v in values)


def validate_gt(data: Any, name: str, require_gt: bool = True,
                extra: dict[str, tuple[str, ...]] | None = None) -> dict[str, Any]:
    """Check a TAO ground-truth object; returns it unchanged.

    Every section of :data:`GT_FIELDS` must be a list of objects with those fields
    plus the ``extra`` ones (:data:`FRAME_FIELDS`, :data:`EVAL_FIELDS`); with
    ``require_gt=False`` ``annotations``, ``tracks`` and ``categories`` may be
    absent (an unannotated split to track). Ids must be unique, a video's frame
    indices too; images must name a known video and annotations a known image, with
    a bbox of four finite numbers and width and height > 0. Raises ``DataError``
    naming ``name`` and the offending entry.
    """
    if not isinstance(data, dict):
        raise DataError(f"{name}: ground truth must be a TAO json object, got {type(data).__name__}")
    _need(data, ("videos", "images") + (GT_KEYS if require_gt else ()), name)
    for section, fields in GT_FIELDS.items():
        items = data.get(section, [])
        if not isinstance(items, list):
            raise DataError(f"{name}: {section} must be a list, got {type(items).__name__}")
        fields = fields + (extra or {}).get(section, ())
        for i, item in enumerate(items):
            _need(item, fields, f"{name}: {section}[{i}]")
    video_ids: set[int] = set()
    for i, video in enumerate(data["videos"]):
        if int(video["id"]) in video_ids:
            raise DataError(f"{name}: videos[{i}]: repeated video id {video['id']}")
        video_ids.add(int(video["id"]))
    image_ids: set[int] = set()
    frame_slots: set[tuple[int, int]] = set()
    for i, image in enumerate(data["images"]):
        where = f"{name}: images[{i}]"
        if int(image["video_id"]) not in video_ids:
            raise DataError(f"{where} (id {image['id']}): unknown video_id {image['video_id']}")
        if int(image["id"]) in image_ids:
            raise DataError(f"{where}: repeated image id {image['id']}")
        slot = (int(image["video_id"]), int(image["frame_index"]))
        if slot in frame_slots:
            raise DataError(f"{where} (id {image['id']}): repeated frame_index {slot[1]} in video {slot[0]}")
        frame_slots.add(slot)
        image_ids.add(int(image["id"]))
    for i, ann in enumerate(data.get("annotations", [])):
        ident = f"{name}: annotations[{i}] (id {ann.get('id')})"
        if int(ann["image_id"]) not in image_ids:
            raise DataError(f"{ident}: unknown image_id {ann['image_id']}")
        bbox = ann["bbox"]
        if not _finite_numbers(bbox, 4, MAX_BOX_PX):
            raise DataError(f"{ident}: bbox must be [x, y, w, h] finite numbers with |values| <= {MAX_BOX_PX:g} px, "
                            f"got {bbox!r}")
        if bbox[2] <= 0 or bbox[3] <= 0:
            raise DataError(f"{ident}: bbox width and height must be > 0, got {bbox}")
    return data


def validate_results(records: Any, name: str, gt: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Check a flat TAO results list; returns the records completed with
    ``category_id`` (1 when absent) and, given the ground truth ``gt``, ``video_id``.

    Every record needs :data:`RESULT_FIELDS`: an integer ``track_id``, a finite
    ``score`` and a bbox of four finite numbers with width and height >= 0; a track
    id appears at most once per image. Against ``gt``, every image id must exist
    and a given ``video_id`` must be the image's. Raises ``DataError`` naming
    ``name`` and the record.
    """
    if not isinstance(records, list):
        raise DataError(f"{name}: TAO results must be a flat json list of boxes, got {type(records).__name__}")
    image_video = None if gt is None else {img["id"]: img["video_id"] for img in gt["images"]}
    out = []
    unknown_images: set[Any] = set()
    seen: set[tuple[Any, Any]] = set()
    for i, rec in enumerate(records):
        where = f"{name}: record {i}"
        missing = [f for f in RESULT_FIELDS if not isinstance(rec, dict) or f not in rec]
        if missing:
            raise DataError(f"{where} lacks field(s) {', '.join(missing)} (needs {', '.join(RESULT_FIELDS)})")
        bbox = rec["bbox"]
        if not _finite_numbers(bbox, 4, MAX_BOX_PX) or bbox[2] < 0 or bbox[3] < 0:
            raise DataError(f"{where}: bbox must be 4 finite numbers [x, y, w, h] with w, h >= 0 and "
                            f"|values| <= {MAX_BOX_PX:g} px, got {bbox!r}")
        if not _finite_numbers([rec["score"]], 1):
            raise DataError(f"{where}: score must be a finite number, got {rec['score']!r}")
        if not isinstance(rec["track_id"], int) or isinstance(rec["track_id"], bool):
            raise DataError(f"{where}: track_id must be an integer, got {rec['track_id']!r}")
        image_id = rec["image_id"]
        key = (image_id, rec["track_id"])
        if key in seen:
            raise DataError(f"{where}: track id {rec['track_id']} appears twice in image {image_id}")
        seen.add(key)
        rec = {**rec, "category_id": rec.get("category_id", 1)}
        if image_video is not None:
            if image_id not in image_video:
                unknown_images.add(image_id)
                continue
            video_id = rec.get("video_id", image_video[image_id])
            if video_id != image_video[image_id]:
                raise DataError(f"{where}: image {image_id} belongs to video {image_video[image_id]} "
                                f"in the ground truth, not {video_id}")
            rec["video_id"] = video_id
        out.append(rec)
    if unknown_images:
        example = ", ".join(str(x) for x in sorted(unknown_images, key=str)[:5])
        if not out:
            raise DataError(f"{name}: results json for a different ground truth: none of its "
                            f"image ids are in the ground truth (e.g. {example})")
        raise DataError(f"{name}: {len(unknown_images)} image id(s) are not in the ground truth "
                        f"(e.g. {example}); results json for a different ground truth?")
    return out


def read_results(path: str | os.PathLike, gt: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Read and check a TAO results json (see :func:`validate_results`)."""
    return validate_results(read_json(path, "results"), str(path), gt)


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
        src = str(self.json_path)
        if not self.json_path.is_file():
            raise DataError(f"{self.json_path}: TAO json not found")
        try:
            data = json.loads(self.json_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise DataError(f"{self.json_path}: not valid json: {err}") from None
        validate_gt(data, src, require_gt=require_gt, extra=FRAME_FIELDS)
        self.categories: dict[int, dict[str, Any]] = {int(c["id"]): c for c in data.get("categories", [])}
        self.tracks: dict[int, dict[str, Any]] = {int(t["id"]): t for t in data.get("tracks", [])}
        self.videos = self._build_videos(data)

    def _build_videos(self, data: dict[str, Any]) -> list[TaoVideo]:
        import numpy as np  # here, not at import: `effowt bench ... --help` reaches this module

        videos = {int(v["id"]): v for v in data["videos"]}
        images = {int(img["id"]): img for img in data["images"]}
        per_image: dict[int, list[tuple[list[float], int, int]]] = {k: [] for k in images}
        for ann in data.get("annotations", []):
            x, y, w, h = (float(v) for v in ann["bbox"])
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
