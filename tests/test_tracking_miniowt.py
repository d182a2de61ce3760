"""Tracker + writers + TrackEval on MiniOWT: perfect boxes with distinct embeddings
must give perfect tracks, through occlusions (objects hidden for several frames)."""

import json
from collections import defaultdict

import numpy as np
import pytest

from effowt.config import TrackerConfig
from effowt.evaluation import evaluate_owta
from effowt.tracking import OnlineAssociator
from effowt.tracking.writers import tao_records


def test_perfect_detections_give_perfect_owta(tmp_path):
    from effowt.data.miniowt import generate_miniowt

    paths = generate_miniowt(tmp_path, size=96, train_images=0, pretrain_images=0,
                             val_videos=4, frames=48, progress=False)
    gt = json.loads(paths.val_json.read_text())
    frame_of = {img["id"]: img["frame_index"] for img in gt["images"]}
    seen = defaultdict(set)
    for ann in gt["annotations"]:
        seen[ann["track_id"]].add(frame_of[ann["image_id"]])
    gaps = [max(f) - min(f) + 1 - len(f) for f in seen.values()]
    assert max(gaps) >= 3  # some object is hidden for several frames and comes back

    rng = np.random.default_rng(0)
    identity = {tid: rng.standard_normal(32) for tid in seen}
    by_image = defaultdict(list)
    for ann in gt["annotations"]:
        by_image[ann["image_id"]].append(ann)
    cfg = TrackerConfig(max_lost=10, nms_thresh=0.9)  # two GT boxes here overlap with IoU 0.74
    records = []
    for video in gt["videos"]:
        tracker = OnlineAssociator(cfg)
        images = sorted((i for i in gt["images"] if i["video_id"] == video["id"]),
                        key=lambda i: i["frame_index"])
        for img in images:
            anns = by_image[img["id"]]
            boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)])
            embs = np.array([identity[a["track_id"]] + 0.2 * rng.standard_normal(32) for a in anns])
            embs /= np.linalg.norm(embs, axis=1, keepdims=True) if len(anns) else 1
            tracks = tracker.step(boxes.reshape(-1, 4), np.full(len(anns), 0.9),
                                  embs.reshape(len(anns), 32))
            records += tao_records(tracks, video["id"], img["id"])
    assert len(records) == len(gt["annotations"])
    metrics = evaluate_owta(gt, records)
    for subset in ("known", "unknown", "all"):
        assert metrics[subset] == pytest.approx({"OWTA": 1.0, "DetRe": 1.0, "AssA": 1.0})
