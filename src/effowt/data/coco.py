"""Two-view training data from any COCO-format json and image folder.

Static images serve as pseudo-clips: each sample is two independently
augmented views of one image, and each object keeps its COCO annotation id in
both views, so the ReID loss knows which boxes are the same object.

Each view: random resized crop (area fraction ``cfg.scale``, aspect ratio
``cfg.ratio``, torchvision's RandomResizedCrop rule) resized to a square
``cfg.image_size``, horizontal flip with probability ``cfg.hflip``, and colour
jitter (brightness, contrast, saturation factors drawn from
``[1 - cfg.color_jitter, 1 + cfg.color_jitter]``). Pixels and boxes go through
the same ``torchvision.transforms.v2.functional`` calls (``resized_crop``,
``horizontal_flip`` on ``tv_tensors.BoundingBoxes``), then boxes are clipped to
the view and dropped when narrower or shorter than ``cfg.min_box_size``.

Annotations are filtered once, when the json is read: crowd regions
(``iscrowd=1``) are dropped (they mark groups, not individual objects, and
have no identity to track) and so are boxes with a non-positive width or
height. Images without annotations stay (their targets are empty). Category
ids are kept as ``labels``; the detector itself is class-agnostic.

Determinism: the augmentation of item ``index`` draws from a
``torch.Generator`` seeded with ``SeedSequence((seed, epoch, index))``, so it
depends only on the dataset's ``seed``, the epoch set with :meth:`set_epoch`
and the index -- not on worker processes or on how many items were drawn
before. A resumed run sees exactly the augmentations it would have seen. (With
DataLoader workers, call ``set_epoch`` before each epoch's iterator is created,
i.e. without ``persistent_workers``.)
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pycocotools.coco import COCO
from torch import Tensor
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as TF

from effowt.config import DataConfig
from effowt.data.sources import load_rgb
from effowt.errors import DataError

Target = dict[str, Tensor]


@dataclass(frozen=True)
class _Record:
    file_name: str
    boxes: np.ndarray  # float32[N, 4] x1 y1 x2 y2
    instance_ids: np.ndarray  # int64[N]
    labels: np.ndarray  # int64[N]


def item_seed(seed: int, epoch: int, index: int) -> int:
    """The 63-bit seed of one item's augmentation, from ``(seed, epoch, index)``."""
    state = np.random.SeedSequence([seed, epoch, index]).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


class TwoViewCocoDataset(torch.utils.data.Dataset):
    """Pairs of augmented views of COCO images with per-object identities.

    Args:
        ann_file: COCO json (``images``, ``annotations`` with ``bbox`` ``[x, y, w, h]``).
        image_dir: folder that ``images[*].file_name`` are relative to.
        cfg: augmentation settings (:class:`effowt.config.DataConfig`).
        seed: base seed of the augmentations (see the module docstring).

    ``ds[i]`` returns ``(views, targets)``: views FloatTensor[2, 3, S, S] RGB in
    [0, 1]; targets a list of 2 dicts ``{"boxes": FloatTensor[N, 4] [x1, y1, x2, y2]
    px in the view, "instance_ids": LongTensor[N] (COCO annotation ids),
    "labels": LongTensor[N] (category ids)}``.
    """

    def __init__(
        self, ann_file: str | os.PathLike, image_dir: str | os.PathLike, cfg: DataConfig, seed: int = 0
    ) -> None:
        self.ann_file = Path(ann_file)
        self.image_dir = Path(image_dir)
        self.cfg = cfg
        self.seed = seed
        self.epoch = 0
        if not self.image_dir.is_dir():
            raise DataError(f"{self.image_dir}: image folder not found")
        self.coco = _load_coco(self.ann_file)
        self.records = [self._record(img_id) for img_id in sorted(self.coco.imgs)]
        missing = [r.file_name for r in self.records if not (self.image_dir / r.file_name).is_file()]
        if missing:
            raise DataError(f"{self.image_dir}: {len(missing)} of the {len(self.records)} images of "
                            f"{self.ann_file} are missing, first: {missing[0]}")

    def _record(self, img_id: int) -> _Record:
        image = self.coco.imgs[img_id]
        boxes, ids, labels = [], [], []
        for ann in self.coco.imgToAnns.get(img_id, []):
            x, y, w, h = ann["bbox"]
            if ann.get("iscrowd", 0) or w <= 0 or h <= 0:
                continue
            boxes.append([x, y, x + w, y + h])
            ids.append(ann["id"])
            labels.append(ann["category_id"])
        return _Record(
            file_name=image["file_name"],
            boxes=np.array(boxes, np.float32).reshape(-1, 4),
            instance_ids=np.array(ids, np.int64),
            labels=np.array(labels, np.int64),
        )

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose augmentations ``__getitem__`` draws."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[Tensor, list[Target]]:
        rec = self.records[index]
        image = torch.from_numpy(load_rgb(self.image_dir / rec.file_name)).permute(2, 0, 1).contiguous()
        generator = torch.Generator().manual_seed(item_seed(self.seed, self.epoch, index))
        boxes = tv_tensors.BoundingBoxes(
            torch.from_numpy(rec.boxes), format="XYXY", canvas_size=tuple(image.shape[-2:])
        )
        views, targets = [], []
        for _ in range(2):
            view, view_boxes = augment_view(image, boxes, self.cfg, generator)
            keep = _big_enough(view_boxes, self.cfg.min_box_size)
            views.append(view)
            targets.append({
                "boxes": view_boxes.as_subclass(Tensor)[keep].float(),
                "instance_ids": torch.from_numpy(rec.instance_ids)[keep],
                "labels": torch.from_numpy(rec.labels)[keep],
            })
        return torch.stack(views), targets


def _load_coco(ann_file: Path) -> COCO:
    if not ann_file.is_file():
        raise DataError(f"{ann_file}: COCO annotation file not found")
    try:
        data = json.loads(ann_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{ann_file}: not valid json: {err}") from None
    if not isinstance(data, dict) or any(k not in data for k in ("images", "annotations")):
        missing = [k for k in ("images", "annotations") if not isinstance(data, dict) or k not in data]
        raise DataError(f"{ann_file}: missing key(s) {', '.join(missing)}")
    image_ids = set()
    for i, image in enumerate(data["images"]):
        if not isinstance(image, dict) or "id" not in image or "file_name" not in image:
            raise DataError(f"{ann_file}: images[{i}] needs 'id' and 'file_name'")
        image_ids.add(image["id"])
    for i, ann in enumerate(data["annotations"]):
        _check_annotation(ann_file, i, ann, image_ids)
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _check_annotation(ann_file: Path, i: int, ann: Any, image_ids: set[Any]) -> None:
    where = f"{ann_file}: annotations[{i}]"
    if not isinstance(ann, dict) or any(k not in ann for k in ("id", "image_id", "bbox", "category_id")):
        raise DataError(f"{where} needs 'id', 'image_id', 'bbox' and 'category_id'")
    bbox = ann["bbox"]
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, (int, float)) for v in bbox)):
        raise DataError(f"{where} (id {ann['id']}): bbox must be [x, y, w, h] numbers, got {bbox!r}")
    if ann["image_id"] not in image_ids:
        raise DataError(f"{where} (id {ann['id']}): unknown image_id {ann['image_id']}")


def _big_enough(boxes: Tensor, min_size: float) -> Tensor:
    wh = boxes[:, 2:] - boxes[:, :2]
    return (wh >= min_size).all(dim=1)


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def crop_params(
    height: int, width: int, scale: list[float], ratio: list[float], generator: torch.Generator
) -> tuple[int, int, int, int]:
    """``(top, left, h, w)`` of a random crop covering ``scale`` of the area with aspect
    ``ratio`` (torchvision's RandomResizedCrop rule: 10 tries, then a centre crop)."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * _uniform(generator, scale[0], scale[1])
        aspect = math.exp(_uniform(generator, *log_ratio))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, (), generator=generator))
            left = int(torch.randint(0, width - w + 1, (), generator=generator))
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def augment_view(
    image: Tensor, boxes: tv_tensors.BoundingBoxes, cfg: DataConfig, generator: torch.Generator
) -> tuple[Tensor, tv_tensors.BoundingBoxes]:
    """One augmented view.

    Args:
        image: uint8 [3, H, W] RGB.
        boxes: ``BoundingBoxes`` [N, 4] XYXY px on the ``(H, W)`` canvas.
        cfg: crop scale / ratio, output size, flip probability, colour jitter.
        generator: the source of every random draw.

    Returns:
        FloatTensor[3, S, S] in [0, 1] and the boxes moved by the same geometry,
        clipped to the view (degenerate ones are not removed here).
    """
    size = [cfg.image_size, cfg.image_size]
    top, left, h, w = crop_params(image.shape[-2], image.shape[-1], cfg.scale, cfg.ratio, generator)
    view = TF.resized_crop(image, top, left, h, w, size=size, antialias=True)
    boxes = TF.resized_crop(boxes, top, left, h, w, size=size)
    if float(torch.rand((), generator=generator)) < cfg.hflip:
        view = TF.horizontal_flip(view)
        boxes = TF.horizontal_flip(boxes)
    boxes = TF.clamp_bounding_boxes(boxes)
    view = view.float() / 255.0
    if cfg.color_jitter > 0:
        low, high = max(0.0, 1.0 - cfg.color_jitter), 1.0 + cfg.color_jitter
        view = TF.adjust_brightness(view, _uniform(generator, low, high))
        view = TF.adjust_contrast(view, _uniform(generator, low, high))
        view = TF.adjust_saturation(view, _uniform(generator, low, high))
    return view.clamp_(0.0, 1.0), boxes


def collate_two_views(items: list[tuple[Tensor, list[Target]]]) -> tuple[Tensor, list[Target]]:
    """Batch ``B`` items into images FloatTensor[2B, 3, S, S] and a list of 2B targets,
    ordered item by item: ``[item0 view0, item0 view1, item1 view0, ...]``."""
    images = torch.cat([views for views, _ in items])
    targets = [t for _, pair in items for t in pair]
    return images, targets
