"""Writers/readers (TAO json, MOT txt), rendering, and the per-video pipeline with a fake model."""

import json
from dataclasses import dataclass

import av
import numpy as np
import pytest
import torch

from effowt.config import TrackerConfig
from effowt.data.tao import read_results
from effowt.errors import DataError
from effowt.tracking import Track, Tracker
from effowt.tracking.output import OutputFolder
from effowt.tracking.partial import read_partial
from effowt.tracking.render import VideoWriter, contact_sheet, draw_tracks, render_scale, sheet_indices, track_color
from effowt.tracking.video_loop import track_video, track_videos
from effowt.tracking.writers import tao_records, write_mot, write_tao_results


def xywh_to_xyxy(bbox: list[float]) -> np.ndarray:
    x, y, w, h = bbox
    return np.array([x, y, x + w, y + h], dtype=np.float32)


def tracks_by_image(records: list[dict]) -> dict[int, list[Track]]:
    """TAO records grouped into ``{image_id: [Track (xyxy box), ...]}`` in file order."""
    out: dict[int, list[Track]] = {}
    for rec in records:
        out.setdefault(rec["image_id"], []).append(
            Track(track_id=int(rec["track_id"]), box=xywh_to_xyxy(rec["bbox"]), score=float(rec["score"])))
    return out


def read_mot(path) -> dict[int, list[Track]]:
    """A MOT txt file as ``{0-based frame index: [Track (xyxy box), ...]}``; DataError on a bad line."""
    out: dict[int, list[Track]] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.split(",")
        try:
            frame, track_id = int(parts[0]), int(float(parts[1]))
            x, y, w, h, score = (float(v) for v in parts[2:7])
        except (ValueError, IndexError):
            raise DataError(f"{path}:{n}: expected frame,id,x,y,w,h,score,..., got {line!r}") from None
        out.setdefault(frame - 1, []).append(Track(track_id=track_id, box=xywh_to_xyxy([x, y, w, h]), score=score))
    return out


TRACKS = [[Track(1, np.float32([10, 20, 40, 60]), 0.9), Track(2, np.float32([50.5, 5, 70, 25]), 0.75)],
          [Track(1, np.float32([12, 21, 42, 61]), 0.85)]]


def test_tao_json_round_trip(tmp_path):
    records = tao_records(TRACKS[0], video_id=3, image_id=30) + tao_records(TRACKS[1], 3, 31)
    assert records[0] == {"video_id": 3, "image_id": 30, "track_id": 1, "bbox": [10.0, 20.0, 30.0, 40.0],
                          "score": 0.9, "category_id": 1}
    write_tao_results(tmp_path / "r.json", records)
    back = tracks_by_image(read_results(tmp_path / "r.json"))
    assert sorted(back) == [30, 31]
    for got, want in zip(back[30] + back[31], TRACKS[0] + TRACKS[1]):
        assert got.track_id == want.track_id
        np.testing.assert_allclose(got.box, want.box, atol=0.01)
        assert got.score == pytest.approx(want.score, abs=1e-5)


def test_mot_txt_round_trip(tmp_path):
    write_mot(tmp_path / "v.txt", [(0, TRACKS[0]), (1, TRACKS[1])])
    lines = (tmp_path / "v.txt").read_text().splitlines()
    assert lines[0] == "1,1,10.00,20.00,30.00,40.00,0.90000,-1,-1,-1"  # 1-based frames, xywh
    back = read_mot(tmp_path / "v.txt")
    assert sorted(back) == [0, 1]
    assert [t.track_id for t in back[0]] == [1, 2]
    np.testing.assert_allclose(back[0][1].box, TRACKS[0][1].box, atol=0.01)


def test_readers_reject_bad_files(tmp_path):
    (tmp_path / "bad.json").write_text(json.dumps([{"image_id": 1}]))
    with pytest.raises(DataError, match="lacks field"):
        read_results(tmp_path / "bad.json")
    (tmp_path / "bad.txt").write_text("1,1,a,b\n")
    with pytest.raises(DataError, match="bad.txt:1"):
        read_mot(tmp_path / "bad.txt")
    with pytest.raises(DataError, match="not found"):
        read_results(tmp_path / "missing.json")


def test_render_colours_and_video(tmp_path):
    assert track_color(3) == track_color(3) and track_color(3) != track_color(4)
    frame = np.zeros((61, 81, 3), np.uint8)
    drawn = draw_tracks(frame, TRACKS[0])
    assert frame.sum() == 0 and drawn.sum() > 0  # input not mutated
    assert drawn.shape == (427, 567, 3)  # enlarged 7x: the long side reaches 512 px
    assert tuple(drawn[280, 70]) == track_color(1)  # left edge of track 1's box, at (10, 40) x 7
    with VideoWriter(tmp_path / "v.mp4", fps=10) as writer:
        for _ in range(4):
            writer.write(drawn)
    with av.open(str(tmp_path / "v.mp4")) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) == 4 and decoded[0].shape == (426, 566, 3)
    assert not list(tmp_path.glob(".*tmp*"))


def test_render_keeps_large_sources_and_writes_contact_sheets(tmp_path):
    from PIL import Image

    assert render_scale(272, 640) == 1 and render_scale(128, 128) == 4 and render_scale(720, 1280) == 1
    labelled = Track(3, np.float32([100, 50, 200, 150]), 0.9, label="a red car")
    drawn = draw_tracks(np.zeros((272, 640, 3), np.uint8), [labelled])
    assert drawn.shape == (272, 640, 3) and tuple(drawn[100, 100]) == track_color(3)
    assert sheet_indices(48) == [0, 16, 31, 47] and sheet_indices(2) == [0, 1] and sheet_indices(0) == []
    contact_sheet([drawn] * 3, tmp_path / "sheet.png")
    with Image.open(tmp_path / "sheet.png") as sheet:
        assert sheet.size == (3 * 384 + 2 * 4, 163)  # tiles shrunk to 384 px wide, 4 px gaps


# --- pipeline with fake videos and a fake model -------------------------------------------


@dataclass
class FakeFrame:
    index: int
    image_id: int | None
    image: np.ndarray


class FakeVideo:
    """A VideoSource look-alike; ``value`` fills every frame (the fake model reads it)."""

    def __init__(self, name, video_id, frames, value):
        self.name, self.video_id, self.n, self.value = name, video_id, frames, value

    def __len__(self):
        return self.n

    def __iter__(self):
        for i in range(self.n):
            image_id = None if self.video_id is None else self.video_id * 100 + i
            yield FakeFrame(i, image_id, np.full((32, 48, 3), self.value, np.uint8))


class OneBoxModel:
    """Detects one box moving right; raises on frames filled with 13 (a 'corrupt' video)."""

    def eval(self):
        return self

    def __call__(self, images):
        if round(float(images[0, 0, 0, 0]) * 255) == 13:
            raise RuntimeError("decoder exploded")
        return [{"boxes": torch.tensor([[4.0, 4.0, 20.0, 20.0]]), "scores": torch.tensor([0.9]),
                 "embeddings": torch.eye(4)[:1]}]


def test_crash_in_one_video_keeps_the_others(tmp_path):
    tracker = Tracker(OneBoxModel(), TrackerConfig())
    videos = [FakeVideo("a/one", 1, 3, 0), FakeVideo("a/two", 2, 3, 13), FakeVideo("a/three", 3, 2, 0)]
    outcomes = track_videos(tracker, enumerate(videos), tmp_path)
    assert [o.ok for o in outcomes] == [True, False, True]
    assert "decoder exploded" in outcomes[1].error
    done = {p.name: read_partial(p).done for p in (tmp_path / "partial").iterdir()}
    assert done == {"1-a-one.jsonl": True, "2-a-two.jsonl": False, "3-a-three.jsonl": True}
    report = OutputFolder(tmp_path).merge(outcomes, wall_s=1.0)
    assert [v.name for v in report.failed] == ["a/two"]
    results = read_results(tmp_path / "results.json")
    assert {r["video_id"] for r in results} == {1, 3} and len(results) == 5
    assert {(r["video_id"], r["track_id"]) for r in results} == {(1, 1), (3, 2)}  # unique over split
    assert (tmp_path / "mot" / "3-a-three.txt").read_text().startswith("1,1,")
    speed = json.loads((tmp_path / "speed.json").read_text())
    assert speed["frames"] == 5
    assert set(speed["per_frame_ms"]) == {"preprocess", "model", "association", "io", "total"}
    assert json.loads((tmp_path / "videos.json").read_text())[1]["error"]


def test_empty_video_and_synthetic_ids(tmp_path):
    tracker = Tracker(OneBoxModel(), TrackerConfig())
    with pytest.raises(DataError, match="no frames"):
        track_video(tracker, FakeVideo("empty", None, 0, 0), 0, tmp_path)
    outcome = track_video(tracker, FakeVideo("clip", None, 2, 0), 4, tmp_path, render=True)
    assert outcome.synthetic_ids and outcome.video_id == 5
    part = read_partial(tmp_path / "partial" / "5-clip.jsonl")
    assert part.done and [r["image_id"] for c in part.chunks() for r in c["results"]] == [5_000_001, 5_000_002]
    assert (tmp_path / "render" / "5-clip.mp4").stat().st_size > 0
    assert (tmp_path / "render" / "5-clip.png").stat().st_size > 0


def test_track_command_source_not_found(tmp_path, capsys):
    from effowt.cli import main

    assert main(["track", "--source", str(tmp_path / "nope.mp4"), "--out", str(tmp_path / "o")]) == 2
    assert "nope.mp4" in capsys.readouterr().err


def test_partial_file_is_appended_in_chunks_and_a_crash_loses_at_most_one(tmp_path):
    class CrashAtFrame5(OneBoxModel):
        calls = 0

        def __call__(self, images):
            self.calls += 1
            if self.calls == 6:
                raise RuntimeError("power cut")
            return super().__call__(images)

    tracker = Tracker(CrashAtFrame5(), TrackerConfig())
    with pytest.raises(RuntimeError, match="power cut"):
        track_video(tracker, FakeVideo("long", 1, 9, 0), 0, tmp_path, chunk_frames=2)
    part = read_partial(tmp_path / "partial" / "1-long.jsonl")
    assert not part.done  # unfinished: --resume tracks it again
    chunks = list(part.chunks())
    assert [c["frames"] for c in chunks] == [2, 2]  # frames 0-3 on disk, frame 4 (one chunk) lost
    assert [r["image_id"] for c in chunks for r in c["results"]] == [100, 101, 102, 103]
    assert chunks[1]["mot"][0][:2] == [3, 1]  # MOT rows: 1-based frame 3, track 1
