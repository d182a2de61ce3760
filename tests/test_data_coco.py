"""Two-view COCO dataset: box/pixel/identity correspondence, filtering, determinism, bad input."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from effowt.config import DataConfig
from effowt.data.coco import TwoViewCocoDataset, collate_two_views
from effowt.errors import DataError

COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255), (0, 255, 255)]
GREY = (128, 128, 128)


def _write(tmp_path: Path, anns: list[dict], images: list[dict] | None = None) -> Path:
    images = images if images is not None else [{"id": 1, "file_name": "a.png", "width": 120, "height": 90}]
    ann_file = tmp_path / "ann.json"
    ann_file.write_text(json.dumps({"images": images, "annotations": anns, "categories": []}))
    return ann_file


@pytest.fixture
def rect_image(tmp_path: Path) -> tuple[Path, list[tuple[int, tuple[int, int, int]]]]:
    """A 120x90 grey image with six uniquely coloured, well separated rectangles."""
    img = np.full((90, 120, 3), GREY, np.uint8)
    anns, ids = [], []
    for k, colour in enumerate(COLOURS):
        x, y, w, h = 6 + (k % 3) * 40, 6 + (k // 3) * 44, 24 + 2 * k, 30 - k
        img[y:y + h, x:x + w] = colour
        anns.append({"id": 500 + k, "image_id": 1, "category_id": 10 + k, "bbox": [x, y, w, h],
                     "area": w * h, "iscrowd": 0})
        ids.append((500 + k, colour))
    Image.fromarray(img).save(tmp_path / "a.png")
    return _write(tmp_path, anns), ids


def test_boxes_follow_pixels_and_ids_shared_across_views(rect_image) -> None:
    ann_file, ids = rect_image
    colour_of = dict(ids)
    cfg = DataConfig(image_size=64, scale=[0.3, 1.0], hflip=0.5, color_jitter=0.0)
    ds = TwoViewCocoDataset(ann_file, ann_file.parent, cfg, seed=1)
    flips = shared = 0
    for epoch in range(12):
        ds.set_epoch(epoch)
        views, targets = ds[0]
        assert views.shape == (2, 3, 64, 64) and views.dtype == torch.float32
        assert 0.0 <= float(views.min()) and float(views.max()) <= 1.0
        for view, target in zip(views, targets):
            for box, iid, label in zip(target["boxes"], target["instance_ids"], target["labels"]):
                assert int(label) == int(iid) - 490
                x1, y1, x2, y2 = box.tolist()
                assert 0 <= x1 < x2 <= 64 and 0 <= y1 < y2 <= 64
                colour = torch.tensor(colour_of[int(iid)], dtype=torch.float32)[:, None, None] / 255
                inside = view[:, int(np.ceil(y1)) + 1:int(y2) - 1, int(np.ceil(x1)) + 1:int(x2) - 1]
                if inside.numel():
                    assert (inside - colour).abs().max() < 0.02
                # just outside each side of the box (inside the view) the colour is gone
                cy, cx = int((y1 + y2) / 2), int((x1 + x2) / 2)
                left, right = int(x1) - 2, int(np.ceil(x2)) + 1
                top, bottom = int(y1) - 2, int(np.ceil(y2)) + 1
                for yy, xx in ((cy, left), (cy, right), (top, cx), (bottom, cx)):
                    if 0 <= yy < 64 and 0 <= xx < 64:
                        assert (view[:, yy, xx] - colour[:, 0, 0]).abs().max() > 0.2
        # horizontal flips happen: compare the x order of two shared objects with the source order
        common = set(targets[0]["instance_ids"].tolist()) & set(targets[1]["instance_ids"].tolist())
        shared += len(common)
        for target in targets:
            x = dict(zip(target["instance_ids"].tolist(), target["boxes"][:, 0].tolist()))
            if 500 in x and 502 in x:
                flips += x[500] > x[502]
    assert shared > 12
    assert flips > 0


def test_same_seed_epoch_index_same_views_and_epochs_differ(rect_image) -> None:
    ann_file, _ = rect_image
    cfg = DataConfig(image_size=48)
    a = TwoViewCocoDataset(ann_file, ann_file.parent, cfg, seed=7)
    b = TwoViewCocoDataset(ann_file, ann_file.parent, cfg, seed=7)
    a.set_epoch(3)
    b.set_epoch(3)
    va, ta = a[0]
    torch.rand(5)  # global RNG state does not matter
    vb, tb = b[0]
    assert torch.equal(va, vb)
    assert all(torch.equal(x["boxes"], y["boxes"]) for x, y in zip(ta, tb))
    assert not torch.equal(va[0], va[1])
    b.set_epoch(4)
    assert not torch.equal(b[0][0], va)
    c = TwoViewCocoDataset(ann_file, ann_file.parent, cfg, seed=8)
    c.set_epoch(3)
    assert not torch.equal(c[0][0], va)


def test_crowd_and_degenerate_boxes_dropped_empty_images_kept(tmp_path: Path) -> None:
    Image.fromarray(np.full((60, 80, 3), 90, np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.full((60, 80, 3), 90, np.uint8)).save(tmp_path / "b.png")
    anns = [
        {"id": 1, "image_id": 1, "category_id": 3, "bbox": [10, 10, 30, 30], "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 3, "bbox": [5, 5, 40, 40], "iscrowd": 1},
        {"id": 3, "image_id": 1, "category_id": 3, "bbox": [20, 20, -5, 10], "iscrowd": 0},
        {"id": 4, "image_id": 1, "category_id": 3, "bbox": [20, 20, 10, 0], "iscrowd": 0},
        {"id": 5, "image_id": 1, "category_id": 3, "bbox": [50, 40, 0.5, 12], "iscrowd": 0},
    ]
    images = [{"id": 1, "file_name": "a.png"}, {"id": 2, "file_name": "b.png"}]
    cfg = DataConfig(image_size=80, scale=[1.0, 1.0], ratio=[1.333, 1.334], hflip=0.0, color_jitter=0.0,
                     min_box_size=2.0)
    ds = TwoViewCocoDataset(_write(tmp_path, anns, images), tmp_path, cfg)
    assert len(ds) == 2
    views, targets = ds[0]
    for target in targets:
        assert target["instance_ids"].tolist() == [1]  # crowd, non-positive and too thin dropped
        assert target["boxes"][0].tolist() == pytest.approx([10, 10 * 80 / 60, 40, 40 * 80 / 60], abs=1e-3)
    _, empty = ds[1]
    assert [t["boxes"].shape for t in empty] == [(0, 4), (0, 4)]
    assert empty[0]["instance_ids"].dtype == torch.int64

    images, batch = collate_two_views([ds[0], ds[1]])
    assert images.shape == (4, 3, 80, 80)
    assert [len(t["boxes"]) for t in batch] == [1, 1, 0, 0]


def test_box_clipped_to_view(tmp_path: Path) -> None:
    Image.fromarray(np.full((50, 50, 3), 90, np.uint8)).save(tmp_path / "a.png")
    anns = [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [30, 30, 40, 40]}]
    cfg = DataConfig(image_size=50, scale=[1.0, 1.0], ratio=[1.0, 1.0], hflip=0.0, color_jitter=0.0)
    ds = TwoViewCocoDataset(_write(tmp_path, anns, [{"id": 1, "file_name": "a.png"}]), tmp_path, cfg)
    assert ds[0][1][0]["boxes"].tolist() == [[30.0, 30.0, 50.0, 50.0]]


def test_bad_input_names_the_file(tmp_path: Path) -> None:
    cfg = DataConfig(image_size=32)
    with pytest.raises(DataError, match="nope.json"):
        TwoViewCocoDataset(tmp_path / "nope.json", tmp_path, cfg)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"images": []}))
    with pytest.raises(DataError, match="bad.json.*annotations"):
        TwoViewCocoDataset(bad, tmp_path, cfg)
    bad.write_text("{not json")
    with pytest.raises(DataError, match="bad.json.*not valid json"):
        TwoViewCocoDataset(bad, tmp_path, cfg)
    ann_file = _write(tmp_path, [{"id": 1, "image_id": 9, "category_id": 1, "bbox": [0, 0, 4, 4]}],
                      [{"id": 1, "file_name": "missing.png"}])
    with pytest.raises(DataError, match="unknown image_id 9"):
        TwoViewCocoDataset(ann_file, tmp_path, cfg)
    ann_file = _write(tmp_path, [], [{"id": 1, "file_name": "missing.png"}])
    with pytest.raises(DataError, match="1 of the 1 images of .*ann.json are missing, first: missing.png"):
        TwoViewCocoDataset(ann_file, tmp_path, cfg)  # checked when built, before any training
    (tmp_path / "missing.png").write_bytes(b"")
    ds = TwoViewCocoDataset(ann_file, tmp_path, cfg)
    (tmp_path / "missing.png").unlink()  # a file that goes away later is named when read
    with pytest.raises(DataError, match="missing.png.*not found"):
        ds[0]
    with pytest.raises(DataError, match="no_dir.*not found"):
        TwoViewCocoDataset(ann_file, tmp_path / "no_dir", cfg)
