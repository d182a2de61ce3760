"""The shipped checkpoint, `effowt demo` (what `make demo` runs) and its results page in a
real browser (headless Chromium; skipped where it is not installed)."""

import contextlib
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest

from effowt.cli import main
from effowt.tracking import Tracker

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
NO_CHROMIUM = "headless Chromium not installed (Debian: apt-get install chromium; see docs/report.md)"


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory) -> tuple[Path, str]:
    """`effowt demo` run once for this file: its output folder and what it printed."""
    out = tmp_path_factory.mktemp("demo") / "demo"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["demo", "--out", str(out)]) == 0
    return out, printed.getvalue()


def test_shipped_checkpoint_tracks_frames(tmp_path):
    from PIL import Image

    from effowt.data.miniowt import generate_miniowt

    world = generate_miniowt(tmp_path / "w", seed=11, size=128, train_images=0, pretrain_images=0, val_videos=1,
                             frames=3)
    video = json.loads(world.val_json.read_text())["videos"][0]["name"]
    frames = [np.asarray(Image.open(world.val_frame(video, i)).convert("RGB")) for i in range(3)]
    tracker = Tracker.from_pretrained("effowt-mini")
    tracks = [tracker.update(frame) for frame in frames]
    assert all(len(frame_tracks) >= 1 for frame_tracks in tracks)  # objects are found in every frame
    ids = [{t.track_id for t in frame_tracks} for frame_tracks in tracks]
    assert ids[0] & ids[1] & ids[2]  # and at least one keeps its id through the clip
    for frame_tracks in tracks:
        for t in frame_tracks:
            assert t.box.shape == (4,) and 0 <= t.box[0] < t.box[2] <= 128 and 0 <= t.box[1] < t.box[3] <= 128


@pytest.mark.slow
def test_demo_writes_tracks_video_and_metrics(demo_out):
    out, printed = demo_out
    from effowt.commands.demo import VTEST
    from effowt.data.cutout import STAMPS_ROOT

    if VTEST.is_file():  # the real footage: tracked, labelled, rendered, with its results page
        real = json.loads((out / "real" / "results.json").read_text())
        assert real and all("label" in r for r in real)
        assert sorted(p.suffix for p in (out / "real" / "render").iterdir()) == [".mp4", ".png"]
        assert (out / "real" / "report.html").is_file()
    else:
        assert "skipped the real footage" in printed and "apt-get install opencv-doc" in printed
    if not STAMPS_ROOT.is_dir():  # no Debian stamps: the scored clip is skipped in one line
        assert "skipped the scored clip" in printed and "apt-get install tuxpaint-stamps-default" in printed
        return
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) >= {"known", "unknown"}
    for split in ("known", "unknown"):
        assert set(metrics[split]) == {"OWTA", "DetRe", "AssA"}
        assert 0.0 <= metrics[split]["OWTA"] <= 1.0
    # the shipped model tracks the cut-out clip (docs/models.md: benchmarks/shipped-cutout/demo-metrics.json)
    assert metrics["known"]["OWTA"] >= 0.05 and metrics["unknown"]["OWTA"] >= 0.10
    assert set(metrics["label_accuracy"]) == {"known", "unknown"}
    results = json.loads((out / "results.json").read_text())
    assert results and {"video_id", "image_id", "track_id", "bbox", "score", "category_id"} <= set(results[0])
    assert len(results) >= 40 and len({r["track_id"] for r in results}) >= 4
    assert sorted(p.suffix for p in (out / "render").iterdir()) == [".mp4", ".mp4", ".png", ".png"]
    with av.open(str(next((out / "render").glob("*.mp4")))) as container:
        assert container.streams.video[0].height == 640  # 160 px clips drawn 4x
    assert "OWTA" in printed and "unknown" in printed
    assert (out / "report.html").is_file() and "report.html" in printed


def _chromium(*args: str, profile: Path) -> str:
    """Run headless Chromium (no sandbox: tests may run as root; its own profile folder)."""
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--mute-audio",
           f"--user-data-dir={profile}", "--virtual-time-budget=10000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
def test_report_page_in_headless_chromium(demo_out, tmp_path):
    out, _ = demo_out
    page = (out / "report.html").resolve().as_uri()
    dom = _chromium("--dump-dom", page, profile=tmp_path / "profile")
    results = json.loads((out / "results.json").read_text())
    rows = re.findall(r'<g class="track-row" id="row-(\d+)" data-track-id="(\d+)"', dom)
    assert len(rows) == len({r["track_id"] for r in results})  # one timeline row per track of results.json
    assert {int(t) for _, t in rows} == {r["track_id"] for r in results}
    videos = re.findall(r"<video [^>]*>", dom)
    assert len(videos) == len(json.loads((out / "videos.json").read_text())) == 2
    assert all('data-state="loaded"' in v for v in videos), videos  # the H.264 renders decode (loadeddata)
    for track_id, _ in rows:  # a row links to its crops and back
        assert f'href="#track-{track_id}"' in dom and f'id="track-{track_id}"' in dom
        assert f'href="#row-{track_id}"' in dom and (out / "report" / "crops" / f"{track_id}.jpg").is_file()
    assert re.search(r'data-ready-ms="\d+"', dom)  # the page's script ran
    assert not re.search(r'(src|href)="https?://', dom)  # nothing from the network
    shot = tmp_path / "report.png"
    _chromium(f"--screenshot={shot}", "--window-size=1100,1100", page, profile=tmp_path / "profile")
    from PIL import Image

    image = np.asarray(Image.open(shot).convert("RGB"))
    assert image.shape[:2] == (1100, 1100) and image.std() > 10  # something was drawn
