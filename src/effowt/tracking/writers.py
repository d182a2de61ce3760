"""Result files: TAO-format json (flat list) and MOT-challenge txt.

Inside the library boxes are ``[x1, y1, x2, y2]``; both formats store
``[x, y, w, h]`` (top-left corner, width, height) in frame pixels.

TAO results (what TrackEval's ``TAO_OW`` reads): a flat json list of
``{"video_id", "image_id", "track_id", "bbox": [x, y, w, h], "score",
"category_id"}``: class-agnostic, every box is category 1, unless the boxes came
from an external detector with categories (``Track.category_id``; TAO_OW scores
class-agnostically either way).
The schema, its validator and reader live in :mod:`effowt.data.tao`.

With a vocabulary (:mod:`effowt.tracking.labels`) each TAO record also has
``"label"`` (the track's text) and ``"label_score"`` (its mean cosine).

MOT txt: one line per box, ``frame,id,x,y,w,h,score,class,-1,-1`` with 1-based
frames; ``class`` is the 1-based index of the track's label in the vocabulary, -1
without one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

import numpy as np

from effowt import boxes
from effowt.fileio import atomic_write_text, atomic_writer
from effowt.tracking.association import Track


def xyxy_to_xywh(box: np.ndarray) -> list[float]:
    """[x1, y1, x2, y2] -> [x, y, w, h] as plain floats (rounded to 1/100 px)."""
    return [round(v, 2) for v in boxes.xyxy_to_xywh(box).tolist()]


def xywh_to_xyxy(bbox: list[float]) -> np.ndarray:
    """[x, y, w, h] -> float32[4] [x1, y1, x2, y2]."""
    return boxes.xywh_to_xyxy(bbox)


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


def mot_rows(frame_index: int, tracks: Iterable[Track]) -> list[list[float]]:
    """One frame's MOT rows before the class column is known: ``[frame, id, x, y, w, h,
    score]`` per box, ``frame_index`` 0-based (stored 1-based), the numbers as written."""
    return [[frame_index + 1, int(t.track_id), *xyxy_to_xywh(t.box), round(float(t.score), 5)] for t in tracks]


def mot_text(rows: Iterable[list[float]], classes: dict[int, int] | None = None) -> str:
    """MOT txt lines of ``rows`` (:func:`mot_rows`); ``classes``: the 1-based label index
    of each labelled track id (-1 for the others, and without a vocabulary)."""
    classes = classes or {}
    return "".join(f"{int(frame)},{int(track_id)},{x:.2f},{y:.2f},{w:.2f},{h:.2f},{score:.5f},"
                   f"{classes.get(int(track_id), -1)},-1,-1\n"
                   for frame, track_id, x, y, w, h, score in rows)


def write_mot(path: str | os.PathLike, frames: Iterable[tuple[int, list[Track]]]) -> None:
    """Write ``(0-based frame index, tracks)`` pairs as a MOT txt file, atomically."""
    atomic_write_text(path, mot_text(row for i, tracks in frames for row in mot_rows(i, tracks)))
