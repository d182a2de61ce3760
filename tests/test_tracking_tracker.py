"""Tracker around a duck-typed fake model: resizing, box mapping, one model call per batch, timings, memory,
errors."""

import tracemalloc

import numpy as np
import pytest
import torch
from torch import nn

import effowt.runs as runs_module
from effowt.config import TrackerConfig
from effowt.errors import DataError, EffOWTError
from effowt.models import ImageTransform
from effowt.runs import default_run_dir
from effowt.tracking import Tracker

DIM = 8


def unit(i: int) -> list:
    v = [0.0] * DIM
    v[i % DIM] = 1.0
    return v


class FakeModel(nn.Module):
    """EffOWT's contract on a script: ``model(images)`` at the frames' own size -> the
    real :class:`ImageTransform` (longest side 64, identity normalisation) -> one dict of
    (boxes in the transformed image's pixels, scores, embeddings) per image from
    ``script(call, h, w)`` -> boxes mapped back to the frame by the transform."""

    def __init__(self, script, image_size=64):
        super().__init__()
        self.script = script
        self.calls = 0
        self.shapes = []
        self.transform = ImageTransform(image_size, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), pad_multiple=1)

    def features(self, x):
        return x

    def heads(self, pyramid):
        self.shapes.append(tuple(pyramid.shape))
        boxes, scores, embs = self.script(self.calls, *pyramid.shape[-2:])
        self.calls += 1
        det = {"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
               "scores": torch.tensor(scores, dtype=torch.float32),
               "embeddings": torch.tensor(embs, dtype=torch.float32).reshape(len(scores), DIM)}
        return [det] * len(pyramid)

    def forward(self, images):
        x, _, _ = self.transform(images)
        return self.transform.postprocess(self.heads(self.features(x)), [tuple(images.shape[-2:])] * len(x))


def test_resize_and_map_boxes_back_to_frame_pixels():
    model = FakeModel(lambda call, h, w: ([[8, 4, 24, 20]], [0.9], [unit(0)]))
    tracker = Tracker(model, TrackerConfig())
    tracks = tracker.update(np.zeros((100, 200, 3), np.uint8))
    assert model.shapes == [(1, 3, 32, 64)]  # longest side 64, aspect kept
    assert len(tracks) == 1 and tracks[0].track_id == 1
    np.testing.assert_allclose(tracks[0].box, [25, 12.5, 75, 62.5])
    assert tracks[0].embedding is None
    assert tracker.update(np.zeros((100, 200, 3), np.uint8), keep_embeddings=True)[0].embedding \
        is not None


def test_boxes_are_clipped_to_the_frame():
    model = FakeModel(lambda call, h, w: ([[-5, -5, 70, 40]], [0.9], [unit(0)]))
    box = Tracker(model, TrackerConfig()).update(np.zeros((32, 64, 3), np.uint8))[0].box
    np.testing.assert_allclose(box, [0, 0, 64, 32])


def test_one_model_call_per_batch_of_frames_of_one_size():
    model = FakeModel(lambda call, h, w: ([[8, 4, 24, 20]], [0.9], [unit(0)]))
    tracker = Tracker(model, TrackerConfig())
    frames = [np.zeros((100, 200, 3), np.uint8)] * 3 + [np.zeros((32, 64, 3), np.uint8)]
    tracks = tracker.update_batch(frames)
    assert model.calls == 2 and model.shapes == [(3, 3, 32, 64), (1, 3, 32, 64)]
    np.testing.assert_allclose(tracks[2][0].box, [25, 12.5, 75, 62.5])
    np.testing.assert_allclose(tracks[3][0].box, [8, 4, 24, 20])


class FakeClock:
    """A ``perf_counter`` that moves only when a stage says so: exact stage times."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


class Clocked(nn.Module):
    """``module`` that takes ``seconds`` on ``clock`` per call."""

    def __init__(self, module, clock: FakeClock, seconds: float) -> None:
        super().__init__()
        self.module, self.clock, self.seconds = module, clock, seconds

    def forward(self, *args):
        self.clock.now += self.seconds
        return self.module(*args)


class ClockedTransform(ImageTransform):
    """The transform, taking 1 on ``clock`` per call."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(64, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), pad_multiple=1)
        self.clock = clock

    def forward(self, images, targets=None):
        self.clock.now += 1
        return super().forward(images, targets)


class ClockedFakeModel(FakeModel):
    """Each stage takes a known time on ``clock``: preprocess 1, backbone 2, neck 4, heads 8;
    ``stage_modules`` names the first three, as EffOWT's do."""

    def __init__(self, script, clock: FakeClock) -> None:
        super().__init__(script)
        self.clock = clock
        self.backbone = Clocked(nn.Identity(), clock, 2)
        self.neck = Clocked(nn.Identity(), clock, 4)
        self.transform = ClockedTransform(clock)

    def stage_modules(self):
        return {"preprocess": self.transform, "backbone": self.backbone, "neck": self.neck}

    def features(self, x):
        return self.neck(self.backbone(x))

    def heads(self, pyramid):
        self.clock.now += 8
        return super().heads(pyramid)


def test_stage_timings_accumulate(monkeypatch):
    import effowt.timing as timing_module
    import effowt.tracking.tracker as tracker_module

    clock = FakeClock()
    monkeypatch.setattr(tracker_module, "time", clock)
    monkeypatch.setattr(timing_module, "time", clock)
    model = ClockedFakeModel(lambda call, h, w: ([[8, 4, 24, 20]], [0.9], [unit(0)]), clock)
    tracker = Tracker(model, TrackerConfig(), time_stages=True)
    for _ in range(3):
        tracker.update(np.zeros((48, 64, 3), np.uint8))
    assert tracker.timings["frames"] == 3
    assert set(tracker.timings) == {"preprocess", "backbone", "neck", "heads", "association",
                                    "frames"}
    # each stage's time lands in its own entry, once per frame (resize and association take no clock time)
    assert {k: v for k, v in tracker.timings.items() if k != "frames"} == {
        "preprocess": 3 * 1, "backbone": 3 * 2, "neck": 3 * 4, "heads": 3 * 8, "association": 0}
    with pytest.raises(ValueError, match="time_stages"):
        Tracker(FakeModel(None), TrackerConfig(), time_stages=True)


def test_ids_per_instance_and_reset():
    def script(call, h, w):
        return [[8, 4, 24, 20], [30, 4, 46, 20]], [0.9, 0.8], [unit(0), unit(1)]

    a = Tracker(FakeModel(script), TrackerConfig())
    b = Tracker(FakeModel(script), TrackerConfig())
    frame = np.zeros((32, 64, 3), np.uint8)
    assert [t.track_id for t in a.update(frame)] == [1, 2]
    assert [t.track_id for t in a.update(frame)] == [1, 2]
    assert [t.track_id for t in b.update(frame)] == [1, 2]
    a.reset()
    a.update(frame)
    assert [t.track_id for t in a.update(frame)] == [1, 2]


def test_bad_frames_are_clear_errors():
    tracker = Tracker(FakeModel(lambda *a: ([], [], [])), TrackerConfig())
    for bad in (np.zeros((10, 10), np.uint8), np.zeros((10, 10, 3), np.float32),
                np.zeros((0, 10, 3), np.uint8), "frame.jpg"):
        with pytest.raises(DataError, match="uint8"):
            tracker.update(bad)
    assert tracker.update(np.zeros((10, 10, 3), np.uint8)) == []


def test_default_run_dir_missing_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(runs_module.resources, "files", lambda package: tmp_path)
    with pytest.raises(EffOWTError, match="default checkpoint"):
        default_run_dir()
    run = tmp_path / "assets" / "effowt-cutout"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("{}\n")
    assert default_run_dir() == run


def test_long_stream_keeps_state_and_memory_flat():
    """Objects appear, live 6 frames and leave; dead tracks must be dropped."""

    def script(call, h, w):
        alive = [k for k in range(call - 5, call + 1) if k >= 0]
        boxes = [[(7 * k) % 40, (3 * k) % 20, (7 * k) % 40 + 20, (3 * k) % 20 + 10] for k in alive]
        embs = [unit(k) for k in alive]
        return boxes, [0.9] * len(alive), embs

    cfg = TrackerConfig(max_lost=3, nms_thresh=1.0, min_cosine=0.5)
    tracker = Tracker(FakeModel(script), cfg)
    frames = (np.full((32, 64, 3), i % 255, np.uint8) for i in range(1200))
    sizes = []
    tracemalloc.start()
    for i, frame in enumerate(frames):
        tracker.update(frame)
        if i == 199:
            base = tracemalloc.get_traced_memory()[0]
        sizes.append(len(tracker.associator.tracks))
    grown = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    assert max(sizes) <= 6 + 6 * (cfg.max_lost + 1)
    assert max(sizes[200:]) <= max(sizes[:200])
    assert grown < 256 * 1024, f"memory grew by {grown} bytes over 1000 frames"


def moving_squares(n: int, h: int = 96, w: int = 128) -> list[np.ndarray]:
    """``n`` frames of three coloured squares drifting over a grey background."""
    frames = []
    for t in range(n):
        frame = np.full((h, w, 3), 90, np.uint8)
        for k, colour in enumerate(((220, 40, 40), (40, 200, 60), (50, 60, 230))):
            x, y = 8 + 30 * k + 3 * t, 10 + 25 * k + (2 - k) * t
            frame[y : y + 22, x : x + 22] = colour
        frames.append(frame)
    return frames


@pytest.fixture(scope="module")
def shipped_tracker():
    return Tracker.from_pretrained("effowt-mini", tracker_overrides={"det_thresh": 0.05, "init_thresh": 0.1})


def _tracks_in_batches(tracker, frames, n):
    tracker.reset()
    out = []
    for i in range(0, len(frames), n):
        out += tracker.update_batch(frames[i : i + n])
    return out


@pytest.mark.parametrize("n", [3, 4])
def test_batched_frames_give_the_same_tracks(shipped_tracker, n):
    frames = moving_squares(7)
    frames.insert(5, np.full((64, 128, 3), 90, np.uint8))  # a size change inside a batch
    one = _tracks_in_batches(shipped_tracker, frames, 1)
    batched = _tracks_in_batches(shipped_tracker, frames, n)
    assert sum(len(f) for f in one) > 0
    assert [[t.track_id for t in f] for f in batched] == [[t.track_id for t in f] for f in one]
    for f_one, f_batched in zip(one, batched):
        for a, b in zip(f_one, f_batched):
            np.testing.assert_allclose(b.box, a.box, atol=1e-3)
            assert abs(a.score - b.score) < 1e-4


def test_image_size_is_built_into_the_model():
    from effowt.runs import create_model

    _, cfg = create_model("effowt-mini")
    assert Tracker.from_pretrained("effowt-mini", image_size=96).image_size == 96
    tracker = Tracker.from_pretrained("effowt-mini", config=cfg, image_size=64)  # the config track_source passes
    assert tracker.model.transform.image_size == 64 and cfg.model.image_size == 128
    boxes, _, _ = tracker.detect(moving_squares(1)[0])
    assert len(boxes) and boxes[:, 2].max() <= 128 and boxes[:, 3].max() <= 96  # frame px


def test_reduced_precision_runs_the_backbone_and_side_in_it_and_the_heads_in_fp32():
    tracker = Tracker.from_pretrained("effowt-mini", precision="bf16")
    model = tracker.model
    assert {p.dtype for p in model.backbone.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in model.side.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in model.detector.parameters()} == {torch.float32}
    boxes, scores, embeddings = tracker.detect(moving_squares(1)[0])
    assert boxes.dtype == np.float32 and np.isfinite(embeddings).all() and len(scores) == len(boxes)
    with pytest.raises(ValueError, match="precision"):
        Tracker(FakeModel(None), TrackerConfig(), precision="fp8")
    with pytest.raises(ValueError, match="set_inference_precision"):
        Tracker(FakeModel(None), TrackerConfig(), precision="bf16")


def test_bf16_tracking_agrees_with_fp32():
    """The bf16 backbone and side network change the detections by rounding only: every
    confident fp32 detection has a bf16 twin (same box, score, embedding within bf16's
    tolerance) and the tracks keep their ids and boxes."""
    from effowt.boxes import box_iou

    fp32, bf16 = Tracker.from_pretrained("effowt-mini"), Tracker.from_pretrained("effowt-mini", precision="bf16")
    for frame in moving_squares(4):
        boxes, scores, embeddings = fp32.detect(frame)
        boxes_bf, scores_bf, embeddings_bf = bf16.detect(frame)
        confident = scores >= 0.25
        assert confident.sum() >= 3  # the three squares at least
        ious = box_iou(boxes[confident], boxes_bf)
        twin = ious.argmax(axis=1)
        assert ious.max(axis=1).min() >= 0.98
        np.testing.assert_allclose(scores_bf[twin], scores[confident], atol=0.01)
        assert (embeddings[confident] * embeddings_bf[twin]).sum(axis=1).min() >= 0.999
        tracks = {t.track_id: t.box for t in fp32.update(frame)}
        tracks_bf = {t.track_id: t.box for t in bf16.update(frame)}
        assert set(tracks_bf) == set(tracks)
        for track_id, box in tracks.items():
            np.testing.assert_allclose(tracks_bf[track_id], box, atol=1.5)
