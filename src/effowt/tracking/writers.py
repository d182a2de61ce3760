"""Result files: TAO-format json (flat list) and MOT-challenge txt, with readers.

Inside the library boxes are ``[x1, y1, x2, y2]``; both formats store
``[x, y, w, h]`` (top-left corner, width, height) in frame pixels.

TAO results (what TrackEval's ``TAO_OW`` reads): a flat json list of
``{"video_id", "image_id", "track_id", "bbox": [x, y, w, h], "score",
"category_id"}``: class-agnostic, every box is category 1, unless the boxes came
from an external detector with categories (``Track.category_id``; TAO_OW scores
class-agnostically either way).

With a vocabulary (:mod:`effowt.tracking.labels`) each TAO record also has
``"label"`` (the track's text) and ``"label_score"`` (its mean cosine).

MOT txt: one line per box, ``frame,id,x,y,w,h,score,class,-1,-1`` with 1-based
frames; ``class`` is the 1-based index of the track's label in the vocabulary, -1
without one.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from effowt.errors import DataError
from effowt.fileio import atomic_write_text, atomic_writer, read_json
from effowt.tracking.association import Track

MAX_BOX_PX = 1e6  # no frame is a million pixels wide: larger box values are corrupt
TAO_FIELDS = ("video_id", "image_id", "track_id", "bbox", "score", "category_id")


def xyxy_to_xywh(box: np.ndarray) -> list[float]:
    """[x1, y1, x2, y2] -> [x, y, w, h] as plain floats (rounded to 1/100 px)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)]


def xywh_to_xyxy(bbox: list[float]) -> np.ndarray:
    """[x, y, w, h] -> float32[4] [x1, y1, x2, y2]."""
    x, y, w, h = bbox
    return np.array([x, y, x + w, y + h], dtype=np.float32)


def tao_records(tracks: Iterable[Track], video_id: int, image_id: int) -> list[dict[str, Any]]:
    """TAO result records for the tracks of one image."""
    records = []
    for t in tracks:
        rec = {"video_id": int(video_id), "image_id": int(image_id), "track_id": int(t.track_id),
               "bbox": xyxy_to_xywh(t.box), "score": round(float(t.score), 5),
               "category_id": 1 if t.category_id is None else int(t.category_id)}
        if t.label is not None:
            rec.update(label=t.label, label_score=round(float(t.label_score), 5))
        records.append(rec)
    return records


def relabel_mot(text: str, classes: dict[int, int]) -> str:
    """MOT lines with the class column (8th) set to ``classes[track id]`` (1-based label
    index) for the tracks it names."""
    lines = []
    for line in text.splitlines(keepends=True):
        parts = line.rstrip("\n").split(",")
        track_id = int(parts[1])
        if track_id in classes and len(parts) >= 8:
            parts[7] = str(classes[track_id])
        lines.append(",".join(parts) + "\n")
    return "".join(lines)


def write_tao_results(path: str | os.PathLike, records: Iterable[dict[str, Any]]) -> int:
    """Write a flat TAO results list atomically, streamed record by record (the same
    bytes as ``json.dumps(list(records))``); returns the number of records."""
    count = 0
    with atomic_writer(path) as f:
        f.write(b"[")
        for rec in records:
            f.write((b"," if count else b"") + json.dumps(rec, separators=(",", ":")).encode())
            count += 1
        f.write(b"]\n")
    return count


def read_tao_results(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read and check a TAO results json (flat list with every field of TAO_FIELDS)."""
    path = Path(path)
    records = read_json(path, "results")
    if not isinstance(records, list):
        raise DataError(f"{path}: TAO results must be a flat json list")
    for i, rec in enumerate(records):
        missing = [f for f in TAO_FIELDS if not isinstance(rec, dict) or f not in rec]
        if missing:
            raise DataError(f"{path}: record {i} lacks field(s) {', '.join(missing)}")
        bbox = rec["bbox"]
        if not (isinstance(bbox, list) and len(bbox) == 4):
            raise DataError(f"{path}: record {i}: bbox must be [x, y, w, h], got {bbox!r}")
    return records


def tracks_by_image(records: list[dict[str, Any]]) -> dict[int, list[Track]]:
    """Group TAO records into ``{image_id: [Track (xyxy box), ...]}`` in file order."""
    out: dict[int, list[Track]] = {}
    for rec in records:
        out.setdefault(rec["image_id"], []).append(
            Track(track_id=int(rec["track_id"]), box=xywh_to_xyxy(rec["bbox"]),
                  score=float(rec["score"])))
    return out


def mot_lines(frame_index: int, tracks: Iterable[Track]) -> str:
    """MOT txt lines for one frame; ``frame_index`` is 0-based (written 1-based)."""
    lines = []
    for t in tracks:
        x, y, w, h = xyxy_to_xywh(t.box)
        lines.append(f"{frame_index + 1},{int(t.track_id)},{x:.2f},{y:.2f},{w:.2f},{h:.2f},"
                     f"{float(t.score):.5f},-1,-1,-1\n")
    return "".join(lines)


def write_mot(path: str | os.PathLike, frames: Iterable[tuple[int, list[Track]]]) -> None:
    """Write ``(0-based frame index, tracks)`` pairs as a MOT txt file, atomically."""
    atomic_write_text(path, "".join(mot_lines(i, tracks) for i, tracks in frames))


def read_mot(path: str | os.PathLike) -> dict[int, list[Track]]:
    """Read a MOT txt file into ``{0-based frame index: [Track (xyxy box), ...]}``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: MOT file not found")
    out: dict[int, list[Track]] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split(",")
        try:
            frame, track_id = int(parts[0]), int(float(parts[1]))
            x, y, w, h, score = (float(v) for v in parts[2:7])
        except (ValueError, IndexError):
            raise DataError(f"{path}:{n}: expected frame,id,x,y,w,h,score,..., got {line!r}") from None
        if frame < 1 or not all(math.isfinite(v) and abs(v) <= MAX_BOX_PX for v in (x, y, w, h, score)):
            raise DataError(f"{path}:{n}: bad frame number or non-finite value in {line!r}")
        out.setdefault(frame - 1, []).append(
            Track(track_id=track_id, box=xywh_to_xyxy([x, y, w, h]), score=score))
    return out

