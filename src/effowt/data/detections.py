"""Detections from another detector, for ``effowt track --detections``.

Two formats, both read and checked here (the only module that does):

- a **COCO-results json** (what every COCO-style detector writes): a flat list
  ``[{"image_id", "bbox": [x, y, w, h], "score"[, "category_id"]}, ...]``; image ids
  are the source's TAO image ids, or for video files and frame folders the
  synthetic ids effowt writes into ``results.json`` (``video_id * 1_000_000 +
  frame index + 1``, ``video_id`` = the video's position in the source + 1);
- a **folder of MOTChallenge det files**, one per video, named after it:
  ``<video name>.txt`` or ``<video name>/det/det.txt`` (the MOTChallenge layout),
  lines ``frame,id,x,y,w,h,score,...`` with 1-based frames (``id`` is ignored).

:func:`read_detections` picks the format and maps image ids to the source's videos
(:func:`image_locator`; the id scheme is :func:`effowt.data.sources.output_image_id`).
Both give, per video (by its position in the source), ``{frame index: (boxes
float32[N, 4] [x1, y1, x2, y2] px, scores float32[N], category ids int64[N] or
None)}``. Frames without an entry have no detections. A file that names an image,
a frame or a video the source does not have is a :class:`~effowt.errors.DataError`
naming the file and the first few such names (both formats alike); so is an
``image_id`` that is not an integer. Boxes with no area inside their frame (zero
width or height, or wholly outside it) are dropped when tracked
(:func:`effowt.tracking.tracker.check_detections`).
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from effowt.errors import DataError
from effowt.fileio import read_json

if TYPE_CHECKING:
    from effowt.data.sources import VideoSource

FrameDetections = tuple[np.ndarray, np.ndarray, "np.ndarray | None"]
VideoDetections = dict[int, FrameDetections]
MAX_LISTED = 5


def _box(bbox: Any, where: str) -> list[float]:
    ok = isinstance(bbox, (list, tuple)) and len(bbox) == 4 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in bbox)
    if not ok or bbox[2] < 0 or bbox[3] < 0:
        raise DataError(f"{where}: bbox must be 4 finite numbers [x, y, w, h] with w, h >= 0, got {bbox!r}")
    x, y, w, h = (float(v) for v in bbox)
    return [x, y, x + w, y + h]


def _pack(rows: dict[int, dict[int, list[tuple[list[float], float, int | None]]]]) -> dict[int, VideoDetections]:
    out: dict[int, VideoDetections] = {}
    for ordinal, frames in rows.items():
        out[ordinal] = {}
        for index, dets in frames.items():
            boxes = np.array([d[0] for d in dets], dtype=np.float32).reshape(-1, 4)
            scores = np.array([d[1] for d in dets], dtype=np.float32)
            cats = None if any(d[2] is None for d in dets) else np.array([d[2] for d in dets], dtype=np.int64)
            out[ordinal][index] = (boxes, scores, cats)
    return out


def read_coco_detections(path: str | os.PathLike,
                         locate: Callable[[Any], tuple[int, int] | None]) -> dict[int, VideoDetections]:
    """Read a COCO-results json; ``locate`` maps an image id to ``(video position in the
    source, frame index)``, None when the source has no such image. Returns
    ``{video position: {frame index: dets}}``."""
    path = Path(path)
    records = read_json(path, "detections")
    if not isinstance(records, list):
        raise DataError(f"{path}: COCO-results detections must be a flat json list of "
                        "{image_id, bbox, score[, category_id]}")
    rows: dict[int, dict[int, list]] = defaultdict(lambda: defaultdict(list))
    unknown: set[Any] = set()
    for i, rec in enumerate(records):
        where = f"{path}: record {i}"
        missing = [k for k in ("image_id", "bbox", "score") if not isinstance(rec, dict) or k not in rec]
        if missing:
            raise DataError(f"{where} lacks field(s) {', '.join(missing)}")
        score = rec["score"]
        if not isinstance(score, (int, float)) or isinstance(score, bool) or not math.isfinite(score):
            raise DataError(f"{where}: score must be a finite number, got {score!r}")
        category = rec.get("category_id")
        if category is not None and (not isinstance(category, int) or isinstance(category, bool)):
            raise DataError(f"{where}: category_id must be an integer, got {category!r}")
        image_id = rec["image_id"]
        if not isinstance(image_id, int) or isinstance(image_id, bool):
            raise DataError(f"{where}: image_id must be an integer, got {image_id!r}")
        box = _box(rec["bbox"], where)
        where_in_source = locate(rec["image_id"])
        if where_in_source is None:
            unknown.add(rec["image_id"])
            continue
        ordinal, index = where_in_source
        rows[ordinal][index].append((box, float(score), category))
    if unknown:
        example = ", ".join(str(x) for x in sorted(unknown, key=str)[:MAX_LISTED])
        raise DataError(f"{path}: {len(unknown)} image id(s) are not in the source (e.g. {example}); "
                        "detections for a different source?")
    return _pack(rows)


def mot_det_files(folder: Path) -> dict[str, Path]:
    """``{video name: det file}`` of a MOTChallenge det folder (both layouts)."""
    files = {p.relative_to(folder).with_suffix("").as_posix(): p for p in folder.rglob("*.txt")
             if p.name != "det.txt"}
    files.update({p.parent.parent.relative_to(folder).as_posix(): p for p in folder.rglob("det/det.txt")})
    return files


def read_mot_detections(folder: str | os.PathLike, names: list[str],
                        lengths: list[int] | None = None) -> dict[int, VideoDetections]:
    """Read a folder of MOTChallenge det files for the videos ``names`` (in source
    order; ``lengths``: their frame counts, a frame past one is a DataError as an unknown
    image id is in a COCO json). Returns ``{video position: {frame index: dets}}``; a
    video without a file has no detections."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: detections folder not found")
    files = mot_det_files(folder)
    if not files:
        raise DataError(f"{folder}: no MOTChallenge det files (<video>.txt or <video>/det/det.txt)")
    position = {name: i for i, name in enumerate(names)}
    unknown = sorted(set(files) - set(position))
    if unknown:
        raise DataError(f"{folder}: det file(s) for video(s) not in the source: "
                        f"{', '.join(unknown[:MAX_LISTED])} (the source has {', '.join(names[:MAX_LISTED])}"
                        f"{', ...' if len(names) > MAX_LISTED else ''})")
    rows: dict[int, dict[int, list]] = defaultdict(lambda: defaultdict(list))
    for name, file in files.items():
        for n, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            parts = line.split(",")
            try:
                frame = int(float(parts[0]))
                x, y, w, h, score = (float(v) for v in parts[2:7])
            except (ValueError, IndexError):
                raise DataError(f"{file}:{n}: expected frame,id,x,y,w,h,score,..., got {line!r}") from None
            if frame < 1:
                raise DataError(f"{file}:{n}: frame numbers start at 1, got {frame}")
            length = None if lengths is None else lengths[position[name]]
            if length is not None and frame > length:
                raise DataError(f"{file}:{n}: frame {frame} is not in video {name}, which has {length} frames; "
                                "detections for a different source?")
            box = _box([x, y, w, h], f"{file}:{n}")
            if not math.isfinite(score):
                raise DataError(f"{file}:{n}: score must be finite, got {parts[6]!r}")
            rows[position[name]][frame - 1].append((box, score, None))
    return _pack(rows)


def read_detections(path: str | os.PathLike, videos: list[VideoSource]) -> dict[int, VideoDetections]:
    """External detections for ``videos`` (the opened source) by video position: a
    folder is read as MOTChallenge det files named after the videos, a file as a
    COCO-results json whose image ids are the source's (:func:`image_locator`)."""
    if Path(path).is_dir():
        return read_mot_detections(path, [v.name for v in videos], [len(v) for v in videos])
    return read_coco_detections(path, image_locator(videos))


def image_locator(videos: list[VideoSource]) -> Callable[[Any], tuple[int, int] | None]:
    """``image id -> (video position, frame index)`` over the opened source ``videos``
    (None for an id the source does not have): TAO image ids of TAO videos, the
    synthetic ids of :func:`effowt.data.sources.output_image_id` for the others."""
    from effowt.data.sources import SYNTHETIC_IMAGE_STRIDE, output_video_id

    tao: dict[int, tuple[int, int]] = {}
    synthetic: dict[int, int] = {}
    for ordinal, video in enumerate(videos):
        if video.video_id is None:
            synthetic[output_video_id(video, ordinal)] = ordinal
        else:
            tao.update({f.image_id: (ordinal, i) for i, f in enumerate(video.video.frames)})

    def locate(image_id: Any) -> tuple[int, int] | None:
        if not isinstance(image_id, int) or isinstance(image_id, bool):
            return None
        if image_id in tao:
            return tao[image_id]
        video_id, index = divmod(image_id - 1, SYNTHETIC_IMAGE_STRIDE)
        if video_id not in synthetic or index >= len(videos[synthetic[video_id]]):
            return None
        return synthetic[video_id], index

    return locate
