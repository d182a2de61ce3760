"""Writing the MiniOWT splits: COCO still-image splits (``train``, ``pretrain``) and
the TAO video split (``val``), with PNG frames and sorted-key json."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from effowt.data.miniowt.drawing import MINIOWT_SCENE, Scene, render_still
from effowt.data.miniowt.layout import SOURCE_MARK, MiniOWTPaths
from effowt.data.miniowt.motion import simulate_video
from effowt.data.miniowt.video import VIDEO_FPS, write_video
from effowt.fileio import atomic_write_bytes, atomic_write_text

_SPLIT_CODES = {"train": 1, "pretrain": 2, "val": 3}


def split_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random source of image / video ``index`` of ``split`` (train, pretrain, val):
    every item is generated from its own stream, independent of the others."""
    return np.random.default_rng((seed, _SPLIT_CODES[split], index))


def _png_bytes(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _xywh(box: list[float]) -> list[float]:
    return [box[0], box[1], box[2] - box[0], box[3] - box[1]]


def _dump_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, sort_keys=True, separators=(",", ":")) + "\n")


def write_coco_split(
    ann_file: Path, image_dir: Path, seed: int, split: str, count: int, size: int, known_only: bool,
    bar: tqdm, scene: Scene = MINIOWT_SCENE, mark: str = SOURCE_MARK, info: dict[str, Any] | None = None,
    **still_kwargs: Any,
) -> None:
    """Write ``count`` still images of ``split`` into ``image_dir`` and their COCO json
    to ``ann_file`` (only known categories annotated with ``known_only``). ``scene``
    draws the images, ``mark`` starts the json's ``info.description``, ``info`` adds
    keys to its ``info``."""
    images, annotations = [], []
    ann_id = 1
    for i in range(count):
        rng = split_rng(seed, split, i)
        img, objs = render_still(rng, size, scene=scene, **still_kwargs)
        name = f"{i:06d}.png"
        atomic_write_bytes(image_dir / name, _png_bytes(img))
        images.append({"id": i + 1, "file_name": name, "width": size, "height": size})
        for cat, box in objs:
            if known_only and not cat.known:
                continue
            x, y, w, h = _xywh(box)
            annotations.append({
                "id": ann_id, "image_id": i + 1, "category_id": cat.id,
                "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0,
            })
            ann_id += 1
        bar.update(1)
    _dump_json(ann_file, {
        "info": {"description": f"{mark} {split}", "seed": seed, "version": "1", **(info or {})},
        "licenses": [], "images": images, "annotations": annotations,
        "categories": scene.category_records(known_only),
    })


def write_val_split(
    paths: MiniOWTPaths, seed: int, num_videos: int, num_frames: int, size: int, bar: tqdm,
    scene: Scene = MINIOWT_SCENE, mark: str = SOURCE_MARK, info: dict[str, Any] | None = None,
) -> None:
    """Simulate ``num_videos`` videos of ``scene`` and write the ``val`` split: TAO json,
    PNG frames (``file_name`` relative to the json's folder) and mp4 videos, where
    ``paths`` says (``mark`` and ``info`` as in :func:`write_coco_split`)."""
    videos, images, annotations, tracks = [], [], [], []
    image_id = ann_id = track_base = 0
    for v in range(num_videos):
        rng = split_rng(seed, "val", v)
        gt = simulate_video(rng, size, num_frames, scene)
        name = f"video_{v:03d}"
        videos.append({
            "id": v + 1, "name": name, "width": size, "height": size,
            "neg_category_ids": [], "not_exhaustive_category_ids": [], "metadata": {"fps": VIDEO_FPS},
        })
        seen: set[int] = set()
        for t, (frame, boxes) in enumerate(zip(gt.frames, gt.boxes)):
            image_id += 1
            frame_path = paths.val_frame(name, t)
            file_name = frame_path.relative_to(paths.val_json.parent).as_posix()
            atomic_write_bytes(frame_path, _png_bytes(frame))
            images.append({
                "id": image_id, "video_id": v + 1, "frame_index": t, "file_name": file_name,
                "width": size, "height": size, "video": name,
            })
            for key in sorted(boxes):
                ann_id += 1
                x, y, w, h = _xywh(boxes[key])
                annotations.append({
                    "id": ann_id, "image_id": image_id, "video_id": v + 1,
                    "track_id": track_base + key + 1, "category_id": gt.categories[key].id,
                    "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0,
                })
                seen.add(key)
            bar.update(1)
        for key in sorted(seen):
            tracks.append({
                "id": track_base + key + 1, "category_id": gt.categories[key].id, "video_id": v + 1,
            })
        track_base += len(gt.categories)
        write_video(paths.val_video(name), gt.frames)
    _dump_json(paths.val_json, {
        "info": {"description": f"{mark} val", "seed": seed, "version": "1", **(info or {})},
        "licenses": [], "videos": videos, "images": images, "annotations": annotations,
        "tracks": tracks, "categories": scene.category_records(False),
    })
