"""effowt eval / evaluate_owta: the official TrackEval TAO_OW + HOTA on a hand-made TAO split."""

import json
import math

import numpy as np
import pytest

from effowt.cli import main
from effowt.errors import DataError
from effowt.evaluation import evaluate_owta

KNOWN = (4, 13)      # TAO ids in TrackEval's TAO_OW known set
UNKNOWN = (2, 3)     # neither known nor distractor -> unknown (never id 1: see notes §5)


def make_gt(frames: int = 4) -> dict:
    """Two videos, each with one known and one unknown object moving right."""
    objects = {1: [(11, KNOWN[0], 0), (12, UNKNOWN[0], 60)],
               2: [(21, KNOWN[1], 0), (22, UNKNOWN[1], 60)]}
    videos, images, anns, tracks = [], [], [], []
    for vid, objs in objects.items():
        videos.append({"id": vid, "name": f"test/vid{vid}", "neg_category_ids": [],
                       "not_exhaustive_category_ids": []})
        for t in range(frames):
            image_id = vid * 100 + t
            images.append({"id": image_id, "video_id": vid, "frame_index": t, "width": 200,
                           "height": 100, "file_name": f"vid{vid}/{t:04d}.jpg"})
            for track_id, cat, x in objs:
                anns.append({"id": len(anns) + 1, "image_id": image_id, "video_id": vid,
                             "track_id": track_id, "category_id": cat, "iscrowd": 0,
                             "bbox": [10 + x + 5 * t, 10, 30, 30], "area": 900})
        tracks += [{"id": tid, "video_id": vid, "category_id": cat} for tid, cat, _ in objs]
    categories = [{"id": c, "name": f"cat{c}"} for c in KNOWN + UNKNOWN]
    return {"videos": videos, "images": images, "annotations": anns, "tracks": tracks,
            "categories": categories, "info": {}, "licenses": []}


def perfect_predictions(gt: dict) -> list:
    return [{"video_id": a["video_id"], "image_id": a["image_id"], "track_id": a["track_id"],
             "bbox": a["bbox"], "score": 0.9, "category_id": 1} for a in gt["annotations"]]


def write(path, obj):
    path.write_text(json.dumps(obj))
    return str(path)


def test_perfect_tracks_score_one_through_cli(tmp_path):
    gt = make_gt()
    gt_path = write(tmp_path / "gt.json", gt)
    pred_path = write(tmp_path / "pred.json", perfect_predictions(gt))
    assert main(["eval", "--gt", gt_path, "--pred", pred_path, "--out", str(tmp_path / "m")]) == 0
    metrics = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert set(metrics) == {"known", "unknown", "all"}
    for subset in metrics.values():
        assert set(subset) == {"OWTA", "DetRe", "AssA"}
        assert subset == pytest.approx({"OWTA": 1.0, "DetRe": 1.0, "AssA": 1.0})
    assert "| known | 100.0 | 100.0 | 100.0 |" in (tmp_path / "m" / "metrics.md").read_text()


def test_swapped_ids_lower_association_not_detection():
    gt = make_gt()
    pred = perfect_predictions(gt)
    for rec in pred:  # video 1: the two tracks exchange ids from frame 2 on
        if rec["video_id"] == 1 and rec["image_id"] % 100 >= 2:
            rec["track_id"] = {11: 12, 12: 11}[rec["track_id"]]
    m = evaluate_owta(gt, pred)
    for subset in ("known", "unknown", "all"):
        assert m[subset]["DetRe"] == pytest.approx(1.0)
        assert m[subset]["AssA"] < 0.9
        assert m[subset]["OWTA"] < 0.95


def test_missing_boxes_lower_detection_recall():
    gt = make_gt()
    pred = [r for r in perfect_predictions(gt) if r["track_id"] != 22]  # one unknown object missed
    m = evaluate_owta(gt, pred)
    assert m["known"]["DetRe"] == pytest.approx(1.0)
    assert m["unknown"]["DetRe"] == pytest.approx(0.5)
    assert 0.5 < m["all"]["DetRe"] < 1.0


def test_max_detections_keeps_highest_scores():
    gt = make_gt()
    pred = perfect_predictions(gt)
    for rec in pred:  # the unknown objects score lower: only known ones survive a limit of 1
        rec["score"] = 0.9 if rec["track_id"] in (11, 21) else 0.2
    m = evaluate_owta(gt, pred, max_detections=1)
    assert m["known"]["DetRe"] == pytest.approx(1.0)
    assert m["unknown"]["DetRe"] == pytest.approx(0.0)


def test_results_for_a_different_gt_is_a_clear_error(tmp_path):
    gt = make_gt()
    pred = perfect_predictions(gt)
    for rec in pred:
        rec["image_id"] += 10_000
    with pytest.raises(DataError, match="different ground truth"):
        evaluate_owta(gt, pred)
    gt_path = write(tmp_path / "gt.json", gt)
    pred_path = write(tmp_path / "pred.json", pred)
    assert main(["eval", "--gt", gt_path, "--pred", pred_path]) == 2


@pytest.mark.parametrize("mutate, message", [
    (lambda p: p[0].__setitem__("bbox", [0, 0, float("nan"), 10]), "finite"),
    (lambda p: p[0].__setitem__("bbox", [0, 0, 1e308, 10]), "finite"),
    (lambda p: p[0].pop("track_id"), "lacks field"),
    (lambda p: p[0].__setitem__("bbox", [1, 2, 3]), "bbox"),
    (lambda p: p.append(dict(p[0], bbox=[0, 0, 5, 5])), "appears twice"),
    (lambda p: p[0].__setitem__("video_id", 2), "belongs to video"),
])
def test_bad_results_are_clear_errors(mutate, message):
    gt = make_gt()
    pred = perfect_predictions(gt)
    mutate(pred)
    with pytest.raises(DataError, match=message):
        evaluate_owta(gt, pred)


def test_bad_ground_truth_and_missing_files(tmp_path):
    gt = make_gt()
    for video in gt["videos"]:
        del video["neg_category_ids"]
    with pytest.raises(DataError, match="neg_category_ids"):
        evaluate_owta(gt, perfect_predictions(make_gt()))
    with pytest.raises(DataError, match="not found"):
        evaluate_owta(tmp_path / "nope.json", [])
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="not a valid json"):
        evaluate_owta(bad, [])


def corrupted_predictions(gt: dict, seed: int) -> list:
    """The perfect tracks with seeded damage: jittered boxes (a spread of IoUs over the
    thresholds), dropped boxes, id switches part-way and false positives."""
    rng = np.random.default_rng(seed)
    pred = []
    for rec in perfect_predictions(gt):
        if rng.random() < 0.15:
            continue
        x, y, w, h = rec["bbox"]
        jitter = rng.normal(0, 3.0, 4)
        track_id = rec["track_id"] + (1000 if rng.random() < 0.3 and rec["image_id"] % 100 >= 2 else 0)
        pred.append({**rec, "track_id": track_id, "score": float(rng.uniform(0.3, 1.0)),
                     "bbox": [x + jitter[0], y + jitter[1], max(1.0, w + jitter[2]), max(1.0, h + jitter[3])]})
        if rng.random() < 0.2:
            pred.append({**rec, "track_id": 5000 + len(pred), "score": float(rng.uniform(0.3, 1.0)),
                         "bbox": [float(rng.uniform(0, 150)), 50.0, 20.0, 20.0]})
    return pred


@pytest.mark.parametrize("seed", range(4))
def test_owta_is_at_most_the_root_of_its_factors(seed):
    """OWTA is the mean over IoU thresholds of sqrt(DetRe_a x AssA_a), so for every subset
    OWTA <= sqrt(mean DetRe x mean AssA) (Cauchy-Schwarz), equal only when the thresholds agree."""
    metrics = evaluate_owta(make_gt(6), corrupted_predictions(make_gt(6), seed))
    for subset, m in metrics.items():
        assert 0 <= m["OWTA"] <= 1 and 0 <= m["DetRe"] <= 1 and 0 <= m["AssA"] <= 1, subset
        assert m["OWTA"] <= math.sqrt(m["DetRe"] * m["AssA"]) + 1e-9, subset
        assert m["OWTA"] < 1.0 and m["DetRe"] > 0, subset  # damaged, not destroyed


def test_perfect_tracks_score_one_whatever_their_ids():
    gt = make_gt(6)
    renamed = [{**rec, "track_id": 7 * rec["track_id"] + 3} for rec in perfect_predictions(gt)]
    for m in evaluate_owta(gt, renamed).values():
        assert m == pytest.approx({"OWTA": 1.0, "DetRe": 1.0, "AssA": 1.0})
