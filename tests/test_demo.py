"""The shipped checkpoint and `effowt demo` (what `make demo` runs)."""

import json

import av
import numpy as np
import pytest

from effowt.cli import main
from effowt.tracking import Tracker


def test_shipped_checkpoint_tracks_frames(tmp_path):
    from PIL import Image

    from effowt.data.miniowt import generate_miniowt

    world = generate_miniowt(tmp_path / "w", seed=11, size=128, train_images=0, pretrain_images=0, val_videos=1,
                             frames=3)
    video = json.loads(world.val_json.read_text())["videos"][0]["name"]
    frames = [np.asarray(Image.open(world.val_frame(video, i)).convert("RGB")) for i in range(3)]
    tracker = Tracker.from_pretrained()
    tracks = [tracker.update(frame) for frame in frames]
    assert all(len(frame_tracks) >= 1 for frame_tracks in tracks)  # objects are found in every frame
    ids = [{t.track_id for t in frame_tracks} for frame_tracks in tracks]
    assert ids[0] & ids[1] & ids[2]  # and at least one keeps its id through the clip
    for frame_tracks in tracks:
        for t in frame_tracks:
            assert t.box.shape == (4,) and 0 <= t.box[0] < t.box[2] <= 128 and 0 <= t.box[1] < t.box[3] <= 128


@pytest.mark.slow
def test_demo_writes_tracks_video_and_metrics(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) >= {"known", "unknown"}
    for split in ("known", "unknown"):
        assert set(metrics[split]) == {"OWTA", "DetRe", "AssA"}
        assert 0.0 <= metrics[split]["OWTA"] <= 1.0
    # the shipped model tracks the clip (README: known 37.8, unknown 13.7 OWTA)
    assert metrics["known"]["OWTA"] >= 0.30 and metrics["unknown"]["OWTA"] >= 0.10
    results = json.loads((out / "results.json").read_text())
    assert results and {"video_id", "image_id", "track_id", "bbox", "score", "category_id"} <= set(results[0])
    assert len(results) >= 200 and len({r["track_id"] for r in results}) >= 8
    assert sorted(p.suffix for p in (out / "render").iterdir()) == [".mp4", ".mp4", ".png", ".png"]
    with av.open(str(next((out / "render").glob("*.mp4")))) as container:
        assert container.streams.video[0].height == 512  # 128 px clips drawn 4x
    printed = capsys.readouterr().out
    assert "OWTA" in printed and "unknown" in printed
