"""MiniOWT: a small, deterministic, synthetic open-world tracking world.

Fifty object categories (10 shapes x 5 surface patterns, each with a
characteristic colour) drawn on a muted, textured background with clutter
(lines and noise blobs that are not objects). Half of the categories are
*known* (annotated for training), half *unknown* (seen only at evaluation).
Category ids come from the TAO-OW id sets of TrackEval's ``TAO_OW`` dataset, so
the official evaluator scores MiniOWT with ``SUBSET`` = known / unknown
unchanged.

Splits written by :func:`generate_miniowt` under ``out_dir``:

- ``train/annotations.json`` + ``train/images/*.png`` (COCO): still images,
  only known categories annotated; unknown objects appear unannotated, as
  unlabelled classes do in real COCO.
- ``pretrain/annotations.json`` + ``pretrain/images/*.png`` (COCO): fewer,
  larger, less occluded objects of ALL categories, meant for crops that train
  the tiny CLIP-style VLM on ``CATEGORIES[i].caption``.
- ``val/annotations.json`` (TAO format, all categories annotated) +
  ``val/frames/<video>/<000000>.png`` + ``val/videos/<video>.mp4``.

The videos show moving objects (smooth random velocity), scale changes, mutual
occlusion (a fixed depth order per object), objects entering and leaving the
frame, look-alike instances of one category (same shape and pattern, slightly
different colour) and camera motion (the background shifts).

Boxes are the *visible part* of an object: the tight box of its pixels left
after occlusion by nearer objects and clipping to the image
(``[x, y, w, h]`` in the json, ``[x1, y1, x2, y2]`` inside the library). An
object is annotated in a frame only when at least ``MIN_VISIBLE_FRACTION`` of
its own (unoccluded, unclipped) pixels and at least ``MIN_VISIBLE_PIXELS``
pixels are visible; a fully hidden object gets no annotation that frame and
keeps its track id when it reappears.

Videos are H.264 in RGB (``libx264rgb``, ``crf=0``: lossless, single-threaded,
bit-exact flags), so decoding ``val/videos/<video>.mp4`` gives exactly the
PNG frames. Every random draw derives from :func:`split_rng` ``(seed, split,
index)``, PNGs carry no metadata and json is written with sorted keys:
the same seed gives byte-identical files.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

from effowt.fileio import atomic_write_bytes, atomic_write_text

SHAPES = (
    "circle", "square", "triangle", "star", "cross",
    "ring", "diamond", "hexagon", "crescent", "heart",
)
PATTERNS = ("solid", "striped", "checkered", "dotted", "gradient")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "orange": (245, 140, 20),
    "yellow": (240, 220, 30),
    "lime": (150, 230, 40),
    "green": (30, 160, 60),
    "cyan": (30, 210, 220),
    "blue": (40, 80, 230),
    "purple": (130, 50, 200),
    "magenta": (230, 50, 190),
    "brown": (130, 80, 30),
}

# Category ids: subsets of the id sets hard-coded in TrackEval's TAO_OW dataset,
# trackeval/datasets/tao_ow.py, ``TAO_OW._split_known_unknown_distractor``:
# KNOWN_IDS are the 25 smallest of its ``knowns`` (TAO ids mapped to COCO);
# UNKNOWN_IDS are the 25 smallest of its ``unknowns`` above 1 (id 1 is skipped
# because TAO_OW maps every box to class 1 and then checks 1 against the videos'
# negative / not-exhaustive lists). No ``distractors`` id is used.
KNOWN_IDS = (
    4, 13, 34, 35, 36, 41, 45, 58, 60, 78, 79, 81, 91, 95, 99, 118, 126, 133,
    139, 154, 174, 185, 211, 221, 229,
)
UNKNOWN_IDS = (
    2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 14, 15, 16, 17, 18, 19, 21, 22, 23, 24,
    25, 26, 27, 28, 29,
)

MIN_VISIBLE_FRACTION = 0.1
MIN_VISIBLE_PIXELS = 6
VIDEO_FPS = 10

_SPLIT_CODES = {"train": 1, "pretrain": 2, "val": 3}
SOURCE_MARK = "MiniOWT"  # how every MiniOWT json's ``info.description`` starts


def split_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random source of image / video ``index`` of ``split`` (train, pretrain, val):
    every item is generated from its own stream, independent of the others."""
    return np.random.default_rng((seed, _SPLIT_CODES[split], index))


@dataclass(frozen=True)
class Category:
    """One MiniOWT category: a shape with a surface pattern and a characteristic colour."""

    id: int
    name: str
    shape: str
    pattern: str
    colour: str
    known: bool
    caption: str


def _build_categories() -> list[Category]:
    cats = []
    known_ids, unknown_ids = iter(KNOWN_IDS), iter(UNKNOWN_IDS)
    colour_names = list(COLOURS)
    for s, shape in enumerate(SHAPES):
        for p, pattern in enumerate(PATTERNS):
            known = (s + p) % 2 == 0
            colour = colour_names[(s + 2 * p) % len(colour_names)]
            name = f"{colour} {pattern} {shape}"
            article = "an" if colour[0] in "aeiou" else "a"
            cats.append(Category(
                id=next(known_ids) if known else next(unknown_ids),
                name=name, shape=shape, pattern=pattern, colour=colour, known=known,
                caption=f"{article} {name}",
            ))
    return cats


CATEGORIES: list[Category] = _build_categories()
"""All 50 categories; ``known`` ones are annotated in ``train``."""
CATEGORY_BY_ID: dict[int, Category] = {c.id: c for c in CATEGORIES}


# ----------------------------------------------------------------------------- rendering


def _shape_mask(shape: str, h: int, w: int) -> np.ndarray:
    """Bool[h, w]: the shape inscribed in an ``h x w`` box."""
    v, u = np.mgrid[0:h, 0:w].astype(np.float32)
    u = (u + 0.5) / w * 2 - 1
    v = (v + 0.5) / h * 2 - 1
    r = np.sqrt(u * u + v * v)
    if shape == "circle":
        return r <= 1
    if shape == "square":
        return (np.abs(u) <= 0.92) & (np.abs(v) <= 0.92)
    if shape == "triangle":
        return np.abs(u) <= (v + 1) / 2
    if shape == "star":
        theta = np.arctan2(u, -v)
        tri = np.abs(((theta * 5 / (2 * np.pi)) % 1) - 0.5) * 2
        return r <= 0.42 + 0.58 * tri
    if shape == "cross":
        return (np.abs(u) <= 0.34) | (np.abs(v) <= 0.34)
    if shape == "ring":
        return (r <= 1) & (r >= 0.55)
    if shape == "diamond":
        return np.abs(u) + np.abs(v) <= 1
    if shape == "hexagon":
        return (np.abs(v) <= 0.87) & (np.sqrt(3) * np.abs(u) + np.abs(v) <= np.sqrt(3))
    if shape == "crescent":
        return (r <= 1) & ((u - 0.45) ** 2 + (v + 0.15) ** 2 > 0.72**2)
    if shape == "heart":
        x, y = u * 1.15, -v * 1.2 + 0.25
        return (x * x + y * y - 1) ** 3 - x * x * y**3 <= 0
    raise ValueError(f"unknown shape {shape!r}")


def _pattern_texture(pattern: str, colour: np.ndarray, h: int, w: int) -> np.ndarray:
    """Float32[h, w, 3]: the surface of an ``h x w`` sprite in its ``colour``."""
    v, u = np.mgrid[0:h, 0:w].astype(np.float32)
    u = (u + 0.5) / w
    v = (v + 0.5) / h
    dark = colour * 0.3 + 20
    if pattern == "solid":
        alt = np.zeros((h, w), bool)
    elif pattern == "striped":
        alt = np.floor((u + v) * 4) % 2 == 1
    elif pattern == "checkered":
        alt = (np.floor(u * 4) + np.floor(v * 4)) % 2 == 1
    elif pattern == "dotted":
        du, dv = (u * 3) % 1 - 0.5, (v * 3) % 1 - 0.5
        alt = du * du + dv * dv <= 0.25**2
    elif pattern == "gradient":
        shade = (1.0 - 0.65 * v)[..., None]
        return colour[None, None, :] * shade
    else:
        raise ValueError(f"unknown pattern {pattern!r}")
    return np.where(alt[..., None], dark[None, None, :], colour[None, None, :]).astype(np.float32)


@dataclass
class _Sprite:
    """An object drawn in one image: box of the full shape (may lie outside the image)."""

    key: int
    category: Category
    colour: np.ndarray
    x: float
    y: float
    w: float
    h: float
    depth: float


def _instance_colour(rng: np.random.Generator, category: Category) -> np.ndarray:
    """The category colour with a small per-instance variation (look-alikes differ slightly)."""
    base = np.array(COLOURS[category.colour], np.float32)
    return np.clip(base + rng.uniform(-18, 18, 3), 0, 255).astype(np.float32)


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Uint8[h, w, 3]: muted low-frequency texture with clutter lines and noise blobs."""
    grid = rng.uniform(80, 170, (6, 6, 1)) + rng.uniform(-18, 18, (6, 6, 3))
    img = Image.fromarray(np.clip(grid, 0, 255).astype(np.uint8)).resize((w, h), Image.BILINEAR)
    draw = ImageDraw.Draw(img)
    scale = max(h, w)
    for _ in range(int(rng.integers(3, 9))):
        pts = rng.uniform(0, 1, 4) * [w, h, w, h]
        tone = tuple(int(c) for c in rng.uniform(60, 190, 3) * 0.6 + 50)
        draw.line([float(p) for p in pts], fill=tone, width=int(rng.integers(1, 3)))
    arr = np.asarray(img).astype(np.int16)
    for _ in range(int(rng.integers(2, 6))):
        bh, bw = (rng.uniform(0.03, 0.12, 2) * scale).astype(int) + 2
        by, bx = int(rng.integers(0, max(1, h - bh))), int(rng.integers(0, max(1, w - bw)))
        yy, xx = np.mgrid[0:bh, 0:bw]
        inside = ((yy + 0.5) / bh * 2 - 1) ** 2 + ((xx + 0.5) / bw * 2 - 1) ** 2 <= 1
        noise = rng.integers(-45, 46, (bh, bw, 1)) + rng.integers(-8, 9, (bh, bw, 3))
        region = arr[by:by + bh, bx:bx + bw]
        region += (noise * inside[..., None])[: region.shape[0], : region.shape[1]].astype(np.int16)
    return np.clip(arr, 0, 255).astype(np.uint8)


def _render(
    background: np.ndarray, sprites: list[_Sprite]
) -> tuple[np.ndarray, dict[int, list[float]]]:
    """Draw ``sprites`` far-to-near on a copy of ``background``.

    Returns the RGB uint8 image and ``{sprite.key: [x1, y1, x2, y2]}`` for the
    sprites visible enough to be annotated (box of their visible pixels).
    """
    img = background.copy()
    hh, ww = img.shape[:2]
    owner = np.full((hh, ww), -1, np.int32)
    full_area: dict[int, int] = {}
    for idx, sp in enumerate(sorted(sprites, key=lambda s: -s.depth)):
        sw, sh = max(2, int(round(sp.w))), max(2, int(round(sp.h)))
        x0, y0 = int(round(sp.x)), int(round(sp.y))
        mask = _shape_mask(sp.category.shape, sh, sw)
        full_area[sp.key] = int(mask.sum())
        cx0, cy0 = max(0, x0), max(0, y0)
        cx1, cy1 = min(ww, x0 + sw), min(hh, y0 + sh)
        if cx1 <= cx0 or cy1 <= cy0:
            continue
        local = mask[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
        tex = _pattern_texture(sp.category.pattern, sp.colour, sh, sw)[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
        region = img[cy0:cy1, cx0:cx1]
        region[local] = np.clip(tex[local], 0, 255).astype(np.uint8)
        owner[cy0:cy1, cx0:cx1][local] = sp.key
    boxes: dict[int, list[float]] = {}
    keys = {sp.key for sp in sprites}
    ys, xs = np.nonzero(owner >= 0)
    ids = owner[ys, xs]
    for key in sorted(keys):
        sel = ids == key
        count = int(sel.sum())
        if count < max(MIN_VISIBLE_PIXELS, MIN_VISIBLE_FRACTION * full_area[key]):
            continue
        x1, x2 = int(xs[sel].min()), int(xs[sel].max()) + 1
        y1, y2 = int(ys[sel].min()), int(ys[sel].max()) + 1
        if x2 - x1 < 2 or y2 - y1 < 2:
            continue
        boxes[key] = [float(x1), float(y1), float(x2), float(y2)]
    return img, boxes


def _png_bytes(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _xywh(box: list[float]) -> list[float]:
    return [box[0], box[1], box[2] - box[0], box[3] - box[1]]


def _category_json(cats: list[Category]) -> list[dict[str, Any]]:
    return [
        {"id": c.id, "name": c.name, "supercategory": c.shape, "shape": c.shape,
         "pattern": c.pattern, "colour": c.colour, "known": c.known, "caption": c.caption}
        for c in sorted(cats, key=lambda c: c.id)
    ]


def _dump_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, sort_keys=True, separators=(",", ":")) + "\n")


# ----------------------------------------------------------------------------- still images


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection of two ``(x, y, w, h)`` boxes over the smaller one's area."""
    iw = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    ih = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return max(0.0, iw) * max(0.0, ih) / min(a[2] * a[3], b[2] * b[3])


def render_still(
    rng: np.random.Generator, size: int, min_objects: int, max_objects: int,
    min_rel: float, max_rel: float, inside: bool,
) -> tuple[np.ndarray, list[tuple[Category, list[float]]]]:
    """One still image with random objects of any category.

    ``min_rel``/``max_rel`` bound the object size relative to ``size``;
    ``inside=True`` keeps whole objects inside the image and apart (a position is
    redrawn, up to 10 times, while it covers more than 15% of a smaller object's
    box). Returns the RGB uint8 image [size, size, 3] and
    ``(category, [x1, y1, x2, y2])`` per visible object.
    """
    bg = _background(rng, size, size)
    n = int(rng.integers(min_objects, max_objects + 1))
    sprites = []
    for key in range(n):
        if sprites and rng.random() < 0.3:
            cat = sprites[int(rng.integers(len(sprites)))].category
        else:
            cat = CATEGORIES[int(rng.integers(len(CATEGORIES)))]
        s = rng.uniform(min_rel, max_rel) * size
        w, h = s * rng.uniform(0.8, 1.25), s * rng.uniform(0.8, 1.25)
        if inside:
            for _ in range(10):
                x, y = rng.uniform(0, size - w), rng.uniform(0, size - h)
                if all(_overlap((x, y, w, h), (o.x, o.y, o.w, o.h)) < 0.15 for o in sprites):
                    break
        else:
            x, y = rng.uniform(-0.3 * w, size - 0.7 * w), rng.uniform(-0.3 * h, size - 0.7 * h)
        sprites.append(_Sprite(key, cat, _instance_colour(rng, cat), x, y, w, h, rng.random()))
    img, boxes = _render(bg, sprites)
    return img, [(sprites[k].category, boxes[k]) for k in sorted(boxes)]


def _write_coco_split(
    split_dir: Path, seed: int, split: str, count: int, size: int, known_only: bool,
    bar: tqdm, **still_kwargs: Any,
) -> Path:
    images, annotations = [], []
    ann_id = 1
    for i in range(count):
        rng = split_rng(seed, split, i)
        img, objs = render_still(rng, size, **still_kwargs)
        name = f"{i:06d}.png"
        atomic_write_bytes(split_dir / "images" / name, _png_bytes(img))
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
    cats = [c for c in CATEGORIES if c.known or not known_only]
    ann_file = split_dir / "annotations.json"
    _dump_json(ann_file, {
        "info": {"description": f"MiniOWT {split}", "seed": seed, "version": "1"},
        "licenses": [], "images": images, "annotations": annotations,
        "categories": _category_json(cats),
    })
    return ann_file


# ----------------------------------------------------------------------------- videos


@dataclass
class _Mover:
    """An object's trajectory in world (background) coordinates."""

    key: int
    category: Category
    colour: np.ndarray
    size: float
    aspect: float
    depth: float
    start: int
    pos: np.ndarray
    vel: np.ndarray
    wander: bool
    scale_amp: float
    scale_freq: float
    scale_phase: float


@dataclass
class VideoGT:
    """A simulated video: frames and, per frame, ``{object key: [x1, y1, x2, y2]}``."""

    frames: list[np.ndarray]
    boxes: list[dict[int, list[float]]]
    categories: dict[int, Category]


def simulate_video(rng: np.random.Generator, size: int, num_frames: int) -> VideoGT:
    """Simulate one MiniOWT video of ``num_frames`` RGB frames [size, size, 3].

    At least one known and one unknown category appear. Objects either wander
    (smooth random velocity, softly pulled to the centre: they may drift out and
    come back) or cross the frame (enter from one edge after a random delay and
    leave by another). The camera pans smoothly over a background larger than
    the frame.
    """
    margin = size // 4
    world = size + 2 * margin
    bg = _background(rng, world, world)
    n = int(rng.integers(3, 8))
    known = [c for c in CATEGORIES if c.known]
    unknown = [c for c in CATEGORIES if not c.known]
    movers: list[_Mover] = []
    for key in range(n):
        if key == 0:
            cat = known[int(rng.integers(len(known)))]
        elif key == 1:
            cat = unknown[int(rng.integers(len(unknown)))]
        elif rng.random() < 0.3:
            cat = movers[int(rng.integers(len(movers)))].category
        else:
            cat = CATEGORIES[int(rng.integers(len(CATEGORIES)))]
        s = rng.uniform(0.1, 0.28) * size
        wander = key < 2 or rng.random() < 0.6
        speed = rng.uniform(0.5, 2.0) * size / 128
        if wander:
            start = 0
            pos = margin + rng.uniform(0.15, 0.85, 2) * size
            angle = rng.uniform(0, 2 * np.pi)
        else:
            start = int(rng.integers(0, max(1, num_frames // 2)))
            edge = int(rng.integers(4))
            along = rng.uniform(0.2, 0.8) * size
            out = -0.6 * s
            pos = np.array([
                [out, along], [size - out, along], [along, out], [along, size - out]
            ][edge]) + margin
            angle = [0.0, np.pi, 0.5 * np.pi, 1.5 * np.pi][edge] + rng.uniform(-0.5, 0.5)
            speed *= 1.5
        vel = speed * np.array([np.cos(angle), np.sin(angle)])
        movers.append(_Mover(
            key, cat, _instance_colour(rng, cat), s, rng.uniform(0.8, 1.25), rng.random(), start,
            np.asarray(pos, float), vel, wander, rng.uniform(0.0, 0.35),
            rng.uniform(0.05, 0.2), rng.uniform(0, 2 * np.pi),
        ))
    cam = rng.uniform(0, 2 * margin, 2)
    cam_vel = rng.normal(0, 0.4, 2) * size / 128
    frames, all_boxes = [], []
    centre = np.array([world / 2, world / 2])
    for t in range(num_frames):
        sprites = []
        for m in movers:
            if t < m.start:
                continue
            if t > m.start:
                if m.wander:
                    pull = (centre - m.pos) * 0.004
                    m.vel = 0.93 * m.vel + pull + rng.normal(0, 0.25, 2) * size / 128
                m.pos = m.pos + m.vel
            scale = 1 + m.scale_amp * np.sin(m.scale_freq * t + m.scale_phase)
            w, h = m.size * scale * m.aspect, m.size * scale / m.aspect
            sx, sy = m.pos - cam - np.array([w, h]) / 2
            sprites.append(_Sprite(m.key, m.category, m.colour, sx, sy, w, h, m.depth))
        cam_vel = 0.95 * cam_vel + rng.normal(0, 0.15, 2) * size / 128
        cam = cam + cam_vel
        for d in range(2):
            if not 0 <= cam[d] <= 2 * margin:
                cam[d] = min(max(cam[d], 0.0), 2.0 * margin)
                cam_vel[d] = -cam_vel[d]
        cx, cy = int(round(cam[0])), int(round(cam[1]))
        img, boxes = _render(bg[cy:cy + size, cx:cx + size], sprites)
        frames.append(img)
        all_boxes.append(boxes)
    return VideoGT(frames, all_boxes, {m.key: m.category for m in movers})


def write_video(path: str | os.PathLike, frames: list[np.ndarray], fps: int = VIDEO_FPS) -> None:
    """Write RGB uint8 frames [H, W, 3] losslessly (H.264 RGB, crf 0) and reproducibly."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4", options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream("libx264rgb", rate=fps)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "rgb24"
        stream.options = {"crf": "0", "preset": "ultrafast", "threads": "1"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    atomic_write_bytes(path, buf.getvalue())


def _write_val_split(
    split_dir: Path, seed: int, num_videos: int, num_frames: int, size: int, bar: tqdm
) -> Path:
    videos, images, annotations, tracks = [], [], [], []
    image_id = ann_id = track_base = 0
    for v in range(num_videos):
        rng = split_rng(seed, "val", v)
        gt = simulate_video(rng, size, num_frames)
        name = f"video_{v:03d}"
        videos.append({
            "id": v + 1, "name": name, "width": size, "height": size,
            "neg_category_ids": [], "not_exhaustive_category_ids": [], "metadata": {"fps": VIDEO_FPS},
        })
        seen: set[int] = set()
        for t, (frame, boxes) in enumerate(zip(gt.frames, gt.boxes)):
            image_id += 1
            file_name = f"frames/{name}/{t:06d}.png"
            atomic_write_bytes(split_dir / file_name, _png_bytes(frame))
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
        write_video(split_dir / "videos" / f"{name}.mp4", gt.frames)
    ann_file = split_dir / "annotations.json"
    _dump_json(ann_file, {
        "info": {"description": "MiniOWT val", "seed": seed, "version": "1"},
        "licenses": [], "videos": videos, "images": images, "annotations": annotations,
        "tracks": tracks, "categories": _category_json(CATEGORIES),
    })
    return ann_file


def is_miniowt_source(path: str | os.PathLike) -> bool:
    """Whether ``path`` (a TAO json, a video file or a frame folder) belongs to a MiniOWT
    world: the json itself, or one found in the path's folder or up to three folders
    above it, has an ``info.description`` starting with "MiniOWT"."""
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


def generate_miniowt(
    out_dir: str | os.PathLike,
    seed: int = 0,
    size: int = 256,
    train_images: int = 1000,
    pretrain_images: int = 1000,
    val_videos: int = 8,
    frames: int = 48,
    progress: bool | None = None,
) -> dict[str, Path]:
    """Generate the MiniOWT world under ``out_dir`` (see the module docstring).

    Deterministic: the same arguments give byte-identical files. ``progress``
    shows a tqdm bar (``None``: only on a terminal). Returns the paths
    ``train_json``, ``train_images``, ``pretrain_json``, ``pretrain_images``,
    ``val_json``, ``val_frames``, ``val_videos``.
    """
    if size < 32:
        raise ValueError(f"size must be >= 32, got {size}")
    for arg, value in (("train_images", train_images), ("pretrain_images", pretrain_images),
                       ("val_videos", val_videos), ("frames", frames)):
        if value < 0:
            raise ValueError(f"{arg} must be >= 0, got {value}")
    if val_videos and frames < 1:
        raise ValueError(f"frames must be >= 1 when val_videos > 0, got {frames}")
    out = Path(out_dir)
    total = train_images + pretrain_images + val_videos * frames
    disable = None if progress is None else not progress
    with tqdm(total=total, desc="MiniOWT", unit="img", disable=disable) as bar:
        train_json = _write_coco_split(
            out / "train", seed, "train", train_images, size, known_only=True, bar=bar,
            min_objects=2, max_objects=8, min_rel=0.08, max_rel=0.3, inside=False,
        )
        pretrain_json = _write_coco_split(
            out / "pretrain", seed, "pretrain", pretrain_images, size, known_only=False, bar=bar,
            min_objects=1, max_objects=4, min_rel=0.2, max_rel=0.45, inside=True,
        )
        val_json = _write_val_split(out / "val", seed, val_videos, frames, size, bar)
    return {
        "train_json": train_json, "train_images": out / "train" / "images",
        "pretrain_json": pretrain_json, "pretrain_images": out / "pretrain" / "images",
        "val_json": val_json, "val_frames": out / "val" / "frames", "val_videos": out / "val" / "videos",
    }
