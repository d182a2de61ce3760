"""`effowt report`: the results page of a tracking output folder, on hand-made folders
(the demo's real one is opened in headless Chromium in tests/test_demo.py)."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from effowt.cli import main
from effowt.errors import DataError
from effowt.report import load_video_rows, write_report

# per-video track id -> 0-based frames it is seen in (track 2 is lost for frames 2-3)
TRACKS = {1: [0, 1, 2, 3, 4, 5], 2: [0, 1, 4, 5], 3: [3, 4]}


def make_output(out: Path, labels: bool = False, source: bool = True) -> Path:
    """A tracking output folder as `effowt track` writes it: one 6-frame video of 64 x 64
    frames (a frame folder as its source), three tracks whose results.json ids are offset by 10."""
    frames = out.parent / "frames"
    if source:
        frames.mkdir(parents=True, exist_ok=True)
        for i in range(6):
            Image.fromarray(np.full((64, 64, 3), 40 * i, np.uint8)).save(frames / f"{i:04d}.png")
    (out / "mot").mkdir(parents=True)
    (out / "partial").mkdir()
    records, lines = [], []
    for frame in range(6):
        for local, seen in TRACKS.items():
            if frame in seen:
                rec = {"video_id": 1, "image_id": 1_000_000 + frame + 1, "track_id": local + 10,
                       "bbox": [4.0 * local, 8.0, 10.0, 12.0], "score": 0.9, "category_id": 1}
                if labels:
                    rec.update(label=f"a thing {local}", label_score=0.5)
                records.append(rec)
                lines.append(f"{frame + 1},{local},{4.0 * local:.2f},8.00,10.00,12.00,0.90000,-1,-1,-1\n")
    (out / "results.json").write_text(json.dumps(records))
    (out / "mot" / "1-frames.txt").write_text("".join(lines))
    (out / "videos.json").write_text(json.dumps([{"ordinal": 0, "name": "frames", "file_stem": "1-frames",
                                                  "video_id": 1, "frames": 6, "synthetic_ids": True,
                                                  "error": None}]))
    (out / "partial" / "settings.json").write_text(json.dumps({"source": str(frames), "frames_root": None}))
    return out


def test_rows_follow_results_json_and_frames_come_from_mot(tmp_path):
    (video,) = load_video_rows(make_output(tmp_path / "out"))
    assert [(t.track_id, t.local_id) for t in video.tracks] == [(11, 1), (12, 2), (13, 3)]
    assert video.tracks[1].frames == [0, 1, 4, 5]
    assert video.tracks[1].segments() == [(0, 1), (4, 5)]
    assert video.tracks[0].picks() == [0, 3, 5] and video.tracks[2].picks() == [0, 1]
    assert video.tracks[2].boxes[0] == (12.0, 8.0, 22.0, 20.0)  # xywh in the files, xyxy here


def test_page_has_one_row_per_track_crops_and_links(tmp_path):
    out = make_output(tmp_path / "out", labels=True)
    (out / "metrics.json").write_text(json.dumps({
        "known": {"OWTA": 0.5, "DetRe": 0.6, "AssA": 0.4}, "unknown": {"OWTA": 0.25, "DetRe": 0.3, "AssA": 0.2},
        "label_accuracy": {"known": 0.75, "unknown": None}}))
    assert main(["report", str(out)]) == 0
    page = (out / "report.html").read_text()
    rows = re.findall(r'<g class=track-row id="row-(\d+)" data-track-id="(\d+)" fill="rgb\(', page)
    assert [int(t) for _, t in rows] == [11, 12, 13]
    assert page.count("<rect ") == 4  # track 2 is two bars: it was lost for two frames
    assert "a thing 2" in page and 'href="#track-12"' in page and 'href="#row-12"' in page
    assert "<td>50.0</td><td>60.0</td><td>40.0</td><td>75.0</td>" in page  # OWTA D.Re A.Acc labels
    for track_id, frames in ((11, 3), (13, 2)):  # first / middle / last box, side by side
        strip = Image.open(out / "report" / "crops" / f"{track_id}.jpg")
        assert strip.height == 64 and strip.width > frames * 20
    assert "<video" not in page and "--render" in page  # no render: the page says how to get one
    assert not re.search(r'(src|href)="?https?://', page)


def test_without_the_source_the_page_says_why_there_are_no_crops(tmp_path):
    out = make_output(tmp_path / "out", source=False)
    write_report(out)
    assert "no crops: the source cannot be read" in (out / "report.html").read_text()
    assert not (out / "report").exists()


def test_not_an_output_folder_or_mixed_runs_are_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "no results.json" in capsys.readouterr().err
    out = make_output(tmp_path / "out")
    (out / "mot" / "1-frames.txt").write_text("1,1,0,0,1,1,0.9,-1,-1,-1\n")
    with pytest.raises(DataError, match="mixes two runs"):
        load_video_rows(out)


def test_track_render_report_writes_the_page(tmp_path, capsys):
    from effowt.data.miniowt import generate_miniowt

    world = generate_miniowt(tmp_path / "w", seed=3, size=128, train_images=0, pretrain_images=0, val_videos=1,
                             frames=4)
    out = tmp_path / "out"
    assert main(["track", "--weights", "effowt-mini", "--source", str(world.val_json), "--out", str(out),
                 "--render", "--report",
                 "--threads", "1"]) == 0
    page = (out / "report.html").read_text()
    results = json.loads((out / "results.json").read_text())
    assert {int(t) for t in re.findall(r'data-track-id="(\d+)"', page)} == {r["track_id"] for r in results}
    assert 'src="render/1-video_000.mp4#t=0.01"' in page and "report.html" in capsys.readouterr().out
