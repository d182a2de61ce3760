"""External detections: Tracker.update(frame, detections=...), the COCO-results and
MOTChallenge det readers, and `effowt track --detections` end to end."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from effowt.config import TrackerConfig
from effowt.data.detections import read_coco_detections, read_mot_detections
from effowt.errors import DataError
from effowt.models import EffOWT, ImageTransform
from effowt.tracking import Tracker


class CountingBackbone(nn.Module):
    """Taps = the input; counts its calls."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return [x]


class TapPyramid(nn.Module):
    def forward(self, x, taps):
        return {"p8": taps[0]}


class BoxReID(nn.Module):
    """Embeds a box by its left edge (x1 // 16 in the model's input pixels picks a one-hot
    axis): same place, same id. Keeps the RoIs it was given."""

    def __init__(self):
        super().__init__()
        self.rois = []

    def forward(self, pyramid, boxes):
        self.rois.append(boxes[0].clone())
        emb = torch.zeros(len(boxes[0]), 8)
        emb[torch.arange(len(boxes[0])), (boxes[0][:, 0] // 16).long().clamp(0, 7)] = 1.0
        return [emb]


def box_embedder() -> EffOWT:
    """A real EffOWT (its transform at 64 px, its embed path) around the parts above."""
    return EffOWT("head", CountingBackbone(), "pyramid", TapPyramid(), nn.Identity(), BoxReID(), 0.1,
                  ImageTransform(64, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), pad_multiple=1))


def test_external_detections_are_embedded_and_associated():
    model = box_embedder()
    tracker = Tracker(model, TrackerConfig())
    frame = np.zeros((64, 128, 3), np.uint8)  # model input 32 x 64: scale 0.5
    boxes = np.array([[0, 0, 30, 30], [70, 10, 100, 40]], np.float32)
    first = tracker.update(frame, detections=(boxes, np.array([0.9, 0.8]), np.array([3, 7])))
    assert [(t.track_id, t.category_id) for t in first] == [(1, 3), (2, 7)]
    torch.testing.assert_close(model.reid.rois[0], torch.tensor(boxes) * 0.5)  # embedded in model pixels
    second = tracker.update(frame, detections=(boxes[::-1] + 2, np.array([0.8, 0.9])))
    assert [(t.track_id, t.category_id) for t in second] == [(1, None), (2, None)]  # best score first
    assert tracker.update(frame, detections=(np.zeros((0, 4)), np.zeros(0))) == []
    outside = tracker.update(frame, detections=([[-10, -5, 40, 200]], [0.9]))
    np.testing.assert_allclose(outside[0].box, [0, 0, 40, 64])  # clipped to the frame
    assert outside[0].track_id == 1 and model.backbone.calls == 4  # once per frame
    with pytest.raises(ValueError, match="category ids"):
        tracker.update(frame, detections=(boxes, [0.9, 0.9], [1]))


def test_coco_results_reader_checks_image_ids(tmp_path):
    path = tmp_path / "dets.json"
    path.write_text(json.dumps([{"image_id": 5, "bbox": [1, 2, 10, 20], "score": 0.5, "category_id": 2},
                                {"image_id": 6, "bbox": [0, 0, 4, 4], "score": 0.7}]))
    dets = read_coco_detections(path, {5: (0, 0), 6: (1, 3)}.get)
    boxes, scores, cats = dets[0][0]
    np.testing.assert_allclose(boxes, [[1, 2, 11, 22]])
    assert scores.tolist() == [0.5] and cats.tolist() == [2] and dets[1][3][2] is None
    with pytest.raises(DataError, match=r"dets.json: 1 image id\(s\) are not in the source \(e.g. 6\)"):
        read_coco_detections(path, {5: (0, 0)}.get)
    path.write_text(json.dumps([{"image_id": 5, "bbox": [1, 2, -1, 2], "score": 0.5}]))
    with pytest.raises(DataError, match="record 0: bbox"):
        read_coco_detections(path, {5: (0, 0)}.get)


def test_mot_det_folder_reader(tmp_path):
    (tmp_path / "clip-a.txt").write_text("1,-1,1,2,10,20,0.9,-1,-1,-1\n3,-1,0,0,5,5,0.4,-1,-1,-1\n")
    (tmp_path / "clip-b" / "det").mkdir(parents=True)
    (tmp_path / "clip-b" / "det" / "det.txt").write_text("2,-1,5,5,5,5,0.8\n")
    dets = read_mot_detections(tmp_path, ["clip-a", "clip-b"])
    assert sorted(dets[0]) == [0, 2] and sorted(dets[1]) == [1]
    np.testing.assert_allclose(dets[0][0][0], [[1, 2, 11, 22]])
    with pytest.raises(DataError, match="not in the source: clip-b"):
        read_mot_detections(tmp_path, ["clip-a"])


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from effowt.data.miniowt import generate_miniowt

    root = tmp_path_factory.mktemp("dets")
    return generate_miniowt(root / "miniowt", size=64, train_images=0, pretrain_images=0,
                            val_videos=1, frames=3, progress=False)


def test_track_with_ground_truth_as_detections(world, tmp_path, capsys):
    from effowt.cli import main

    gt = json.loads(world.val_json.read_text())
    dets = [{"image_id": a["image_id"], "bbox": a["bbox"], "score": 1.0, "category_id": a["category_id"]}
            for a in gt["annotations"]]
    (tmp_path / "dets.json").write_text(json.dumps(dets))
    out = tmp_path / "out"
    assert main(["track", "--weights", "effowt-mini", "--source", str(world.val_json),
                 "--detections", str(tmp_path / "dets.json"),
                 "--out", str(out), "tracker.nms_thresh=1.0"]) == 0
    results = json.loads((out / "results.json").read_text())
    key = lambda r: (r["image_id"], tuple(r["bbox"]), r["category_id"])  # noqa: E731
    assert sorted(map(key, results)) == sorted(map(key, gt["annotations"]))
    assert "MiniOWT" not in capsys.readouterr().out

    (tmp_path / "bad.json").write_text(json.dumps([{**dets[0], "image_id": 999}]))
    capsys.readouterr()
    assert main(["track", "--weights", "effowt-mini", "--source", str(world.val_json),
                 "--detections", str(tmp_path / "bad.json"),
                 "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.json: 1 image id(s) are not in the source (e.g. 999)" in err[0]
