"""Online association (model-free): hand-made detections, exact expected ids."""

import numpy as np
import pytest

from effowt.config import TrackerConfig
from effowt.tracking import OnlineAssociator, associate
from effowt.tracking.association import TrackState, bisoftmax, box_iou

DIM = 8


def emb(i: int, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    v[i] = 1.0
    if noise:
        v += noise * np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def box(x: float, y: float = 10.0, size: float = 20.0) -> list:
    return [x, y, x + size, y + size]


def step(tracker, dets):
    """dets: list of (box, score, embedding) -> {track_id: box}."""
    if not dets:
        out = tracker.step(np.zeros((0, 4)), np.zeros(0), np.zeros((0, DIM)))
    else:
        b, s, e = zip(*dets)
        out = tracker.step(np.array(b), np.array(s), np.stack(e))
    return {t.track_id: t.box for t in out}


def test_bisoftmax_and_iou():
    det = np.stack([emb(0), emb(1)])
    sim = bisoftmax(det, np.stack([emb(1), emb(0)]), temperature=0.1)
    assert sim[0, 1] > 0.99 and sim[1, 0] > 0.99 and sim[0, 0] < 0.01
    assert box_iou(np.array([box(0)]), np.array([box(0), box(10), box(100)]))[0] == pytest.approx(
        [1.0, 200 / 600, 0.0])


def test_occlusion_keeps_id():
    tracker = OnlineAssociator(TrackerConfig(max_lost=3, iou_gate=0.3))
    ids = [step(tracker, [(box(10 + 4 * t), 0.9, emb(0, 0.05, t))]) for t in range(3)]
    assert [list(i) for i in ids] == [[1], [1], [1]]
    assert step(tracker, []) == {} and step(tracker, []) == {}
    assert tracker.tracks[0].lost and tracker.tracks[0].missed == 2
    back = step(tracker, [(box(10 + 4 * 5), 0.9, emb(0, 0.05, 5))])
    assert list(back) == [1]
    assert not tracker.tracks[0].lost


def test_death_after_max_lost_missed_frames():
    tracker = OnlineAssociator(TrackerConfig(max_lost=2))
    step(tracker, [(box(10), 0.9, emb(0))])
    step(tracker, [])
    step(tracker, [])
    assert len(tracker.tracks) == 1  # missed exactly max_lost frames: still lost
    assert list(step(tracker, [(box(10), 0.9, emb(0))])) == [1]
    for _ in range(3):
        step(tracker, [])
    assert tracker.tracks == []  # missed max_lost + 1 frames: deleted
    assert list(step(tracker, [(box(10), 0.9, emb(0))])) == [2]


def test_crossing_objects_keep_ids():
    """Two objects pass each other (boxes overlap mid-way); appearance keeps them apart."""
    tracker = OnlineAssociator(TrackerConfig(iou_gate=0.1))
    a_ids, b_ids = set(), set()
    for t in range(11):
        a = (box(10 + 8 * t, y=10), 0.9, emb(0, 0.1, 2 * t))
        b = (box(90 - 8 * t, y=20), 0.8, emb(1, 0.1, 2 * t + 1))
        out = step(tracker, [b, a])
        inv = {tuple(np.round(v, 3)): k for k, v in out.items()}
        a_ids.add(inv[tuple(np.round(np.float32(a[0]), 3))])
        b_ids.add(inv[tuple(np.round(np.float32(b[0]), 3))])
    assert a_ids == {1} and b_ids == {2}


def test_lone_dissimilar_detection_starts_a_new_track():
    # the bi-softmax of one detection and one track is 1.0 whatever they look like;
    # min_cosine rejects the pair
    tracker = OnlineAssociator(TrackerConfig())
    step(tracker, [(box(10), 0.9, emb(0))])
    assert list(step(tracker, [(box(12), 0.9, emb(1))])) == [2]


def test_iou_gate_binds_live_tracks_but_not_lost_ones():
    cfg = TrackerConfig(iou_gate=0.3, motion=False)
    tracker = OnlineAssociator(cfg)
    step(tracker, [(box(10), 0.9, emb(0))])
    assert list(step(tracker, [(box(200), 0.9, emb(0))])) == [2]  # live track 1: gated out
    tracker = OnlineAssociator(cfg)
    step(tracker, [(box(10), 0.9, emb(0))])
    step(tracker, [])
    assert list(step(tracker, [(box(200), 0.9, emb(0))])) == [1]  # lost track 1: re-found


def test_motion_prediction_passes_the_gate():
    """An object speeding up to 8 px/frame (IoU 0.43 between frames) passes a 0.5 gate
    only against its constant-velocity prediction."""
    dets = [[(box(x), 0.9, emb(0))] for x in (10, 16, 24, 32, 40)]
    ids = {}
    for motion in (True, False):
        tracker = OnlineAssociator(TrackerConfig(iou_gate=0.5, motion=motion))
        ids[motion] = [list(step(tracker, d)) for d in dets]
    assert ids[True] == [[1]] * 5
    assert ids[False][:3] == [[1], [1], [2]]


def test_thresholds_nms_and_max_dets():
    cfg = TrackerConfig(det_thresh=0.3, init_thresh=0.5, nms_thresh=0.7, max_dets=2)
    tracker = OnlineAssociator(cfg)
    out = step(tracker, [(box(10), 0.2, emb(0)),      # below det_thresh: dropped
                         (box(100), 0.4, emb(1)),     # below init_thresh: no birth
                         (box(200), 0.9, emb(2)),
                         (box(201), 0.8, emb(2))])    # duplicate of the previous: NMS
    assert list(out) == [1]
    assert out[1] == pytest.approx(box(200))
    # a low-score detection may continue an existing track
    assert list(step(tracker, [(box(202), 0.4, emb(2))])) == [1]
    out = step(tracker, [(box(40 * i), 0.9 - 0.01 * i, emb(i)) for i in range(5)])
    assert len(out) == 2  # max_dets


def test_ids_are_per_instance_and_reset_restarts_them():
    a, b = OnlineAssociator(TrackerConfig()), OnlineAssociator(TrackerConfig())
    assert list(step(a, [(box(10), 0.9, emb(0)), (box(100), 0.8, emb(1))])) == [1, 2]
    assert list(step(b, [(box(10), 0.9, emb(0))])) == [1]
    a.reset()
    assert a.tracks == []
    assert list(step(a, [(box(100), 0.9, emb(1))])) == [1]


def test_associate_directly():
    cfg = TrackerConfig()
    tracks = [TrackState(track_id=7, box=np.float32(box(0)), embedding=emb(0), score=0.9,
                         velocity=np.zeros(4, np.float32)),
              TrackState(track_id=8, box=np.float32(box(50)), embedding=emb(1), score=0.9,
                         velocity=np.zeros(4, np.float32))]
    matches, unmatched = associate(tracks, np.float32([box(52), box(300), box(1)]),
                                   np.stack([emb(1), emb(2), emb(0)]), cfg)
    assert sorted(matches) == [(0, 2), (1, 0)]
    assert unmatched.tolist() == [1]


@pytest.mark.parametrize("field, value", [("det_thresh", 1.5), ("temperature", 0.0),
                                          ("max_lost", -1), ("max_dets", 0)])
def test_bad_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        OnlineAssociator(TrackerConfig(**{field: value}))
