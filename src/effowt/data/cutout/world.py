"""The cut-out world's scene and its two known / unknown splits.

A split decides which catalogue categories are *known* (annotated in ``train/``)
and gives every category its TAO-OW id, so TrackEval's ``TAO_OW`` scores the world
unchanged (known ids from its ``knowns``, unknown ids from its ``unknowns``, never a
distractor id):

- ``far``: known = the super-categories of :data:`FAR_KNOWN_SUPERCATEGORIES`
  (animals and food, the kind of categories COCO has); unknown = every other
  super-category (tools, instruments, vehicles, household, clothes, buildings,
  clip-art drawings, ...), which detection training never sees.
- ``near``: as many known categories as ``far``, drawn at random across all
  super-categories (a fixed draw: the split is a property of the world, not of a
  seed).

TAO_OW has 78 known ids, so known categories are grouped by their folder
(``animals/mammals`` -> one known category, as COCO groups breeds into "dog"); its
json record lists the members' captions under ``captions`` (label accuracy accepts
any of them). Each unknown category keeps its own id.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from effowt.data.cutout.catalogue import CutoutObject
from effowt.data.miniowt.drawing import Sprite, background, compose
from effowt.errors import DataError

SPLITS = ("far", "near")
FAR_KNOWN_SUPERCATEGORIES = ("animals", "food")
SOURCE_IMAGE_PX = 160  # cut-outs are read at most this large (longest side)


def tao_ow_id_sets() -> tuple[list[int], list[int]]:
    """TrackEval ``TAO_OW``'s known ids and its unknown ids above 1, ascending (id 1 is
    skipped as MiniOWT does: TAO_OW maps every tracker box to class 1)."""
    from effowt.evaluation.label_accuracy import tao_ow_splits

    knowns, unknowns = tao_ow_splits()
    return sorted(knowns), sorted(i for i in unknowns if i > 1)


@dataclass(frozen=True)
class WorldCategory:
    """A catalogue category placed in a split: its TAO-OW ``id`` (shared by a known
    group), whether it is ``known``, and the json ``name`` of that id."""

    id: int
    known: bool
    id_name: str
    object: CutoutObject

    @property
    def caption(self) -> str:
        return self.object.caption


def known_names(objects: list[CutoutObject], split: str) -> set[str]:
    """Names of the known categories of ``split``."""
    if split not in SPLITS:
        raise DataError(f"--split: unknown split {split!r} (valid: {', '.join(SPLITS)})")
    far = {o.name for o in objects if o.supercategory in FAR_KNOWN_SUPERCATEGORIES}
    if split == "far":
        return far
    order = np.random.default_rng(0).permutation(len(objects))
    return {objects[i].name for i in order[:len(far)]}


def place_in_split(objects: list[CutoutObject], split: str) -> list[WorldCategory]:
    """Every catalogue category with its id and known flag in ``split`` (module docstring)."""
    known = known_names(objects, split)
    known_ids, unknown_ids = tao_ow_id_sets()
    groups = sorted({o.group for o in objects if o.name in known})
    unknowns = [o for o in objects if o.name not in known]
    if len(groups) > len(known_ids) or len(unknowns) > len(unknown_ids):
        raise DataError(f"split {split}: {len(groups)} known groups / {len(unknowns)} unknown categories "
                        f"exceed TAO_OW's {len(known_ids)} known / {len(unknown_ids)} unknown ids")
    group_id = dict(zip(groups, known_ids))
    unknown_id = dict(zip((o.name for o in unknowns), unknown_ids))
    return [
        WorldCategory(group_id[o.group], True, o.group, o) if o.name in known
        else WorldCategory(unknown_id[o.name], False, o.name, o)
        for o in objects
    ]


def category_records(categories: list[WorldCategory], split: str, known_only: bool) -> list[dict[str, Any]]:
    """The json ``categories`` of a split: one record per id (a known group lists its
    members' captions), sorted by id."""
    records: dict[int, dict[str, Any]] = {}
    for c in categories:
        if known_only and not c.known:
            continue
        rec = records.setdefault(c.id, {
            "id": c.id, "name": c.id_name, "known": c.known, "split": split, "captions": [],
            "supercategory": c.object.supercategory,
            "caption": c.id_name.split("/")[-1] if c.known else c.caption,
        })
        rec["captions"].append(c.caption)
    return [records[i] for i in sorted(records)]


def _cut_cutout(sp: Sprite) -> tuple[int, int, np.ndarray, np.ndarray]:
    """A cut-out fitted into its sprite's box at its own aspect ratio, centred; mask alpha >= 128."""
    look: np.ndarray = sp.look
    scale = min(sp.w / look.shape[1], sp.h / look.shape[0])
    sw, sh = max(2, int(round(look.shape[1] * scale))), max(2, int(round(look.shape[0] * scale)))
    patch = np.asarray(Image.fromarray(look).resize((sw, sh), Image.BILINEAR))
    x0, y0 = int(round(sp.x + (sp.w - sw) / 2)), int(round(sp.y + (sp.h - sh) / 2))
    return x0, y0, patch[..., 3] >= 128, patch[..., :3]


class CutoutScene:
    """Draws real cut-outs on MiniOWT's procedural backgrounds.

    Our choice of background: MiniOWT's muted low-frequency texture with clutter
    lines and blobs. Photographic wallpapers would add objects nobody annotates
    (houses, trees, boats) to every frame; the texture has none, and needs no other
    package.

    An instance's look (:meth:`look`) is one of its category's images, flipped at
    random, rotated by up to 15 degrees, with per-channel colour gains in
    [0.8, 1.2]; :meth:`render` fits it into its box keeping its aspect ratio, and
    its mask is where alpha >= 128. Boxes follow MiniOWT's visible-part rule.
    """

    def __init__(self, categories: list[WorldCategory], split: str) -> None:
        self.categories = categories
        self.split = split
        self._images: dict[Path, np.ndarray] = {}

    def _source(self, path: Path) -> np.ndarray:
        if path not in self._images:
            try:
                with Image.open(path) as img:
                    rgba = img.convert("RGBA")
            except OSError as err:
                raise DataError(f"{path}: cannot read cut-out image ({err})") from None
            rgba.thumbnail((SOURCE_IMAGE_PX, SOURCE_IMAGE_PX), Image.BILINEAR)
            self._images[path] = np.asarray(rgba)
        return self._images[path]

    def look(self, rng: np.random.Generator, category: WorldCategory) -> np.ndarray:
        """Uint8[h, w, 4]: one augmented image of ``category``, cropped to its alpha box."""
        files = category.object.files
        src = self._source(files[int(rng.integers(len(files)))])
        flip, angle, gains = rng.random() < 0.5, rng.uniform(-15, 15), rng.uniform(0.8, 1.2, 3)
        img = Image.fromarray(src[:, ::-1] if flip else src)
        img = img.rotate(float(angle), resample=Image.BILINEAR, expand=True)
        arr = np.asarray(img).astype(np.float32)
        arr[..., :3] = np.clip(arr[..., :3] * gains, 0, 255)
        ys, xs = np.nonzero(arr[..., 3] >= 128)
        if len(ys) == 0:
            return arr.astype(np.uint8)
        return arr[ys.min():ys.max() + 1, xs.min():xs.max() + 1].astype(np.uint8)

    def background(self, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
        return background(rng, h, w)

    def render(self, bg: np.ndarray, sprites: list[Sprite]) -> tuple[np.ndarray, dict[int, list[float]]]:
        """Draw ``sprites`` far-to-near (:func:`~effowt.data.miniowt.drawing.compose`);
        ``{key: [x1, y1, x2, y2]}`` of the visible ones."""
        return compose(bg, sprites, _cut_cutout)

    def category_records(self, known_only: bool) -> list[dict[str, Any]]:
        return category_records(self.categories, self.split, known_only)
