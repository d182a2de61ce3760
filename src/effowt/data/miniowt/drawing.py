"""Drawing MiniOWT images: shapes, surface patterns, a cluttered background, and
the visible-part boxes of the objects after occlusion (see the package docstring)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from PIL import Image, ImageDraw

from effowt.data.miniowt.catalogue import CATEGORIES, COLOURS, Category

MIN_VISIBLE_FRACTION = 0.1
MIN_VISIBLE_PIXELS = 6


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
class Sprite:
    """An object drawn in one image: box of the full shape (may lie outside the image);
    ``look`` is its per-instance appearance (MiniOWT: its RGB colour, float32[3])."""

    key: int
    category: Category
    look: Any
    x: float
    y: float
    w: float
    h: float
    depth: float


def instance_colour(rng: np.random.Generator, category: Category) -> np.ndarray:
    """The category colour with a small per-instance variation (look-alikes differ slightly)."""
    base = np.array(COLOURS[category.colour], np.float32)
    return np.clip(base + rng.uniform(-18, 18, 3), 0, 255).astype(np.float32)


def background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
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


def visible_boxes(owner: np.ndarray, full_area: dict[int, int]) -> dict[int, list[float]]:
    """The annotation rule of every world: ``{key: [x1, y1, x2, y2]}`` of the visible
    pixels of each object (``owner``: Int32[H, W], the key of the object drawn on top
    of each pixel, -1 for background; ``full_area``: each key's unoccluded, unclipped
    pixel count), for objects with at least ``MIN_VISIBLE_PIXELS`` and
    ``MIN_VISIBLE_FRACTION`` of their own pixels visible and a box of 2 px or more."""
    boxes: dict[int, list[float]] = {}
    ys, xs = np.nonzero(owner >= 0)
    ids = owner[ys, xs]
    for key in sorted(full_area):
        sel = ids == key
        count = int(sel.sum())
        if count < max(MIN_VISIBLE_PIXELS, MIN_VISIBLE_FRACTION * full_area[key]):
            continue
        x1, x2 = int(xs[sel].min()), int(xs[sel].max()) + 1
        y1, y2 = int(ys[sel].min()), int(ys[sel].max()) + 1
        if x2 - x1 < 2 or y2 - y1 < 2:
            continue
        boxes[key] = [float(x1), float(y1), float(x2), float(y2)]
    return boxes


Cut = Callable[[Sprite], tuple[int, int, np.ndarray, np.ndarray]]


def compose(background: np.ndarray, sprites: list[Sprite], cut: Cut) -> tuple[np.ndarray, dict[int, list[float]]]:
    """Draw ``sprites`` far-to-near on a copy of ``background``: ``cut(sprite)`` gives its
    top-left ``(x0, y0)`` in pixels, its mask Bool[h, w] and its colours [h, w, 3] (clipped
    to 0..255); the parts outside the image are dropped. Returns the RGB uint8 image and
    :func:`visible_boxes` of the sprites (every world's drawing and annotation rule)."""
    img = background.copy()
    hh, ww = img.shape[:2]
    owner = np.full((hh, ww), -1, np.int32)
    full_area: dict[int, int] = {}
    for sp in sorted(sprites, key=lambda s: -s.depth):
        x0, y0, mask, colours = cut(sp)
        full_area[sp.key] = int(mask.sum())
        cx0, cy0 = max(0, x0), max(0, y0)
        cx1, cy1 = min(ww, x0 + mask.shape[1]), min(hh, y0 + mask.shape[0])
        if cx1 <= cx0 or cy1 <= cy0:
            continue
        local = mask[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
        region = img[cy0:cy1, cx0:cx1]
        region[local] = np.clip(colours[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0][local], 0, 255).astype(np.uint8)
        owner[cy0:cy1, cx0:cx1][local] = sp.key
    return img, visible_boxes(owner, full_area)


def _cut_shape(sp: Sprite) -> tuple[int, int, np.ndarray, np.ndarray]:
    sw, sh = max(2, int(round(sp.w))), max(2, int(round(sp.h)))
    mask = _shape_mask(sp.category.shape, sh, sw)
    return int(round(sp.x)), int(round(sp.y)), mask, _pattern_texture(sp.category.pattern, sp.look, sh, sw)


def render_sprites(
    background: np.ndarray, sprites: list[Sprite]
) -> tuple[np.ndarray, dict[int, list[float]]]:
    """Draw MiniOWT's shape ``sprites`` far-to-near on a copy of ``background``
    (:func:`compose`): the RGB uint8 image and ``{sprite.key: [x1, y1, x2, y2]}`` for the
    sprites visible enough to be annotated (box of their visible pixels)."""
    return compose(background, sprites, _cut_shape)



def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection of two ``(x, y, w, h)`` boxes over the smaller one's area."""
    iw = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    ih = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return max(0.0, iw) * max(0.0, ih) / min(a[2] * a[3], b[2] * b[3])


class Scene(Protocol):
    """What a world draws its images from (MiniOWT's shapes, or the cut-out world's
    real objects): the categories (each with ``.id`` and ``.known``), a per-instance
    look, a background and a renderer that keeps the visible-box rule
    (:func:`visible_boxes`)."""

    categories: Sequence[Any]

    def look(self, rng: np.random.Generator, category: Any) -> Any: ...

    def background(self, rng: np.random.Generator, h: int, w: int) -> np.ndarray: ...

    def render(self, background: np.ndarray, sprites: list[Sprite]) -> tuple[np.ndarray, dict[int, list[float]]]: ...

    def category_records(self, known_only: bool) -> list[dict[str, Any]]:
        """The json ``categories`` of a split (only the known ones with ``known_only``)."""
        ...


class MiniOWTScene:
    """MiniOWT's scene: the 50 shape categories, a colour per instance, the textured
    background, :func:`render_sprites`."""

    categories: Sequence[Category] = CATEGORIES

    def look(self, rng: np.random.Generator, category: Category) -> np.ndarray:
        return instance_colour(rng, category)

    def background(self, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
        return background(rng, h, w)

    def render(self, background: np.ndarray, sprites: list[Sprite]) -> tuple[np.ndarray, dict[int, list[float]]]:
        return render_sprites(background, sprites)

    def category_records(self, known_only: bool) -> list[dict[str, Any]]:
        return [
            {"id": c.id, "name": c.name, "supercategory": c.shape, "shape": c.shape,
             "pattern": c.pattern, "colour": c.colour, "known": c.known, "caption": c.caption}
            for c in sorted(CATEGORIES, key=lambda c: c.id) if c.known or not known_only
        ]


MINIOWT_SCENE = MiniOWTScene()


def render_still(
    rng: np.random.Generator, size: int, min_objects: int, max_objects: int,
    min_rel: float, max_rel: float, inside: bool, scene: Scene = MINIOWT_SCENE,
) -> tuple[np.ndarray, list[tuple[Any, list[float]]]]:
    """One still image with random objects of any category of ``scene``.

    ``min_rel``/``max_rel`` bound the object size relative to ``size``;
    ``inside=True`` keeps whole objects inside the image and apart (a position is
    redrawn, up to 10 times, while it covers more than 15% of a smaller object's
    box). Returns the RGB uint8 image [size, size, 3] and
    ``(category, [x1, y1, x2, y2])`` per visible object.
    """
    bg = scene.background(rng, size, size)
    n = int(rng.integers(min_objects, max_objects + 1))
    sprites = []
    for key in range(n):
        if sprites and rng.random() < 0.3:
            cat = sprites[int(rng.integers(len(sprites)))].category
        else:
            cat = scene.categories[int(rng.integers(len(scene.categories)))]
        s = rng.uniform(min_rel, max_rel) * size
        w, h = s * rng.uniform(0.8, 1.25), s * rng.uniform(0.8, 1.25)
        if inside:
            for _ in range(10):
                x, y = rng.uniform(0, size - w), rng.uniform(0, size - h)
                if all(_overlap((x, y, w, h), (o.x, o.y, o.w, o.h)) < 0.15 for o in sprites):
                    break
        else:
            x, y = rng.uniform(-0.3 * w, size - 0.7 * w), rng.uniform(-0.3 * h, size - 0.7 * h)
        sprites.append(Sprite(key, cat, scene.look(rng, cat), x, y, w, h, rng.random()))
    img, boxes = scene.render(bg, sprites)
    return img, [(sprites[k].category, boxes[k]) for k in sorted(boxes)]

