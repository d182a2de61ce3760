"""Fault injection through the CLI, as a user (or an adversarial tester) meets it:
names that sanitise alike, a second run into a busy folder, kill -9 / SIGINT /
SIGTERM then --resume, a disk that fills up, bad arguments, odd inputs.

Subprocess tests wait for a marker (a finished video in partial/) instead of
sleeping, and bound every wait. Model: the ``mini`` preset with random weights
and open thresholds (boxes come out); videos: folders of random PNG frames."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import effowt
from effowt.cli import main
from effowt.config import load_config
from effowt.lockfile import LOCK_FILE
from effowt.tracking.partial import read_partial

OPEN_THRESHOLDS = ["model.head.score_thresh=0.0", "tracker.det_thresh=0.0", "tracker.init_thresh=0.0",
                   "tracker.match_thresh=0.0", "tracker.min_cosine=-1.0"]
OUTPUTS = ("results.json", "videos.json", "speed.json")
WAIT_S = 180


def write_frames(folder: Path, count: int, seed: int, size: tuple[int, int] = (48, 64)) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(folder / f"{i:03d}.png")
    return folder


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from effowt.runs import build_seeded_model, save_run

    cfg = load_config("mini", OPEN_THRESHOLDS)
    return save_run(tmp_path_factory.mktemp("run") / "run", build_seeded_model(cfg), cfg)


@pytest.fixture(scope="module")
def long_source(tmp_path_factory):
    """A short first video (the marker) and three longer ones still to do when it ends."""
    root = tmp_path_factory.mktemp("long")
    write_frames(root / "a", 2, seed=1)
    for seed, name in enumerate(("b", "c", "d"), start=2):
        write_frames(root / name, 15, seed=seed)
    return root


@pytest.fixture(scope="module")
def reference(run_dir, long_source, tmp_path_factory):
    """The uninterrupted run every interrupted one must reproduce."""
    out = tmp_path_factory.mktemp("reference") / "out"
    assert main(track_args(run_dir, long_source, out)) == 0
    return out


def track_args(run_dir, source, out, *extra):
    return ["track", "--weights", str(run_dir), "--source", str(source), "--out", str(out), *extra]


def snapshot(out: Path, speed: bool = True) -> dict[str, bytes]:
    """The bytes of a run's outputs (``speed=False``: without the timings, to compare runs)."""
    names = OUTPUTS if speed else tuple(n for n in OUTPUTS if n != "speed.json")
    files = [out / name for name in names] + sorted((out / "mot").glob("*"))
    return {str(p.relative_to(out)): p.read_bytes() for p in files}


def spawn(args: list[str]) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(Path(effowt.__file__).parents[1]),
                                           os.environ.get("PYTHONPATH", "")]))
    return subprocess.Popen([sys.executable, "-m", "effowt", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def wait_for_finished_video(proc: subprocess.Popen, out: Path) -> None:
    """Block until the run has finished a video (a complete partial file), at most WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        parts = (read_partial(p) for p in (out / "partial").glob("*.jsonl"))
        if any(p is not None and p.done for p in parts):
            return
        if proc.poll() is not None:
            pytest.fail(f"run ended (exit {proc.returncode}) before the marker: {proc.communicate()[1]}")
        time.sleep(0.02)
    proc.kill()
    pytest.fail("no video finished in time")


def error_lines(stderr: str) -> list[str]:
    """stderr without warnings; every warning must be one line too (no source line)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert not any(line.startswith(" ") for line in lines), stderr
    return [line for line in lines if ": warning: " not in line]


# --- 1. names that sanitise alike -------------------------------------------------------


def test_names_that_sanitise_alike_stay_distinct_videos(run_dir, tmp_path):
    names = ["clip 1", "clip-1", "视频", "影片"]
    source = tmp_path / "src"
    for seed, name in enumerate(names):
        write_frames(source / name, 2, seed=10 + seed)
    assert main(track_args(run_dir, source, tmp_path / "all")) == 0
    videos = json.loads((tmp_path / "all" / "videos.json").read_text())
    assert sorted(v["name"] for v in videos) == sorted(names)
    assert len({v["file_stem"] for v in videos}) == 4
    results = json.loads((tmp_path / "all" / "results.json").read_text())
    for video in videos:
        alone = tmp_path / f"alone-{video['video_id']}"
        assert main(track_args(run_dir, source / video["name"], alone)) == 0
        alone_mot = list((alone / "mot").glob("*.txt"))
        assert len(alone_mot) == 1
        assert (tmp_path / "all" / "mot" / f"{video['file_stem']}.txt").read_bytes() == alone_mot[0].read_bytes()
        mine = [r for r in results if r["video_id"] == video["video_id"]]
        theirs = json.loads((alone / "results.json").read_text())
        offset = min(r["track_id"] for r in mine) - min(r["track_id"] for r in theirs)
        assert [(r["image_id"] % 1_000_000, r["track_id"] - offset, r["bbox"], r["score"]) for r in mine] == \
               [(r["image_id"] % 1_000_000, r["track_id"], r["bbox"], r["score"]) for r in theirs]


# --- 3. a failing run leaves the previous outputs as they were ---------------------------


def test_failing_runs_leave_previous_outputs_byte_identical(run_dir, tmp_path, monkeypatch, capsys):
    good = tmp_path / "good"
    for seed, name in enumerate(("x", "y")):
        write_frames(good / name, 2, seed=20 + seed)
    out = tmp_path / "out"
    assert main(track_args(run_dir, good, out)) == 0
    before = snapshot(out)
    capsys.readouterr()

    broken = tmp_path / "broken"  # every frame unreadable: no video finishes
    for name in ("x", "y"):
        (broken / name).mkdir(parents=True)
        (broken / name / "000.png").write_bytes(b"not a png")
    with pytest.warns(UserWarning, match="skipping frame"):
        assert main(track_args(run_dir, broken, out)) == 1
    assert "no video finished" in capsys.readouterr().err
    assert snapshot(out) == before

    assert main(track_args(run_dir, good, out, "--device", "bogus")) == 2
    assert snapshot(out) == before
    capsys.readouterr()

    calls = {"n": 0}
    fsync = os.fsync

    def full_after_four(fd):  # probe, settings, header: then the disk is full
        calls["n"] += 1
        if calls["n"] > 4:
            raise OSError(28, "No space left on device")
        fsync(fd)

    monkeypatch.setattr(os, "fsync", full_after_four)
    assert main(track_args(run_dir, good, out)) == 2
    monkeypatch.setattr(os, "fsync", fsync)
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "No space left on device" in err and str(out / "partial") in err and "Traceback" not in err
    assert snapshot(out) == before
    assert not (out / LOCK_FILE).exists()


# --- 6. one line, no traceback ------------------------------------------------------------


@pytest.mark.parametrize("case", ["device-bogus", "device-cuda", "track-out-file", "eval-out-file"])
def test_bad_arguments_are_one_line(case, run_dir, tmp_path, capsys):
    source = write_frames(tmp_path / "v", 1, seed=30)
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    if case == "device-cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    argv, words = {
        "device-bogus": (track_args(run_dir, source, tmp_path / "o", "--device", "bogus"), "bogus"),
        "device-cuda": (track_args(run_dir, source, tmp_path / "o", "--device", "cuda"), "--device cpu"),
        "track-out-file": (track_args(run_dir, source, a_file), "not a folder"),
        "eval-out-file": (["eval", "--gt", str(a_file), "--pred", str(a_file), "--out", str(a_file)],
                          "not a folder"),
    }[case]
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in captured.err
    assert captured.out == ""


# --- 2. one run per folder ----------------------------------------------------------------


@pytest.mark.slow
def test_second_run_into_a_busy_folder_is_refused(run_dir, long_source, reference, tmp_path, capsys):
    out = tmp_path / "out"
    first = spawn(track_args(run_dir, long_source, out))
    wait_for_finished_video(first, out)
    assert main(track_args(run_dir, long_source, out)) == 2  # refused before loading a model
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"in use by another effowt run (pid {first.pid})" in err
    _, stderr = first.communicate(timeout=WAIT_S)
    assert first.returncode == 0, stderr
    assert snapshot(out, speed=False) == snapshot(reference, speed=False)
    assert not (out / LOCK_FILE).exists()


# --- 4. interrupts, crashes and --resume --------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_then_resume_gives_the_uninterrupted_results(sig, code, run_dir, long_source,
                                                               reference, tmp_path, capsys):
    out = tmp_path / "out"
    proc = spawn(track_args(run_dir, long_source, out))
    wait_for_finished_video(proc, out)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr
    [line] = error_lines(stderr)
    assert line.startswith(f"effowt track: interrupted by {sig.name}: ") and "--resume" in line
    assert not (out / "results.json").exists() and not (out / LOCK_FILE).exists()

    assert main(track_args(run_dir, long_source, out, "--resume")) == 0
    assert "resumed: kept" in capsys.readouterr().out
    assert snapshot(out, speed=False) == snapshot(reference, speed=False)


@pytest.mark.slow
def test_kill_9_then_resume_takes_over_the_stale_lock(run_dir, long_source, reference, tmp_path):
    out = tmp_path / "out"
    proc = spawn(track_args(run_dir, long_source, out))
    wait_for_finished_video(proc, out)
    proc.kill()
    proc.communicate(timeout=WAIT_S)
    assert (out / LOCK_FILE).read_text().strip() == str(proc.pid)
    with pytest.warns(UserWarning, match=f"stale lock of pid {proc.pid}"):
        assert main(track_args(run_dir, long_source, out, "--resume")) == 0
    assert snapshot(out, speed=False) == snapshot(reference, speed=False)


def test_resume_refuses_other_settings(run_dir, tmp_path, capsys):
    source = write_frames(tmp_path / "v", 1, seed=40)
    out = tmp_path / "out"
    assert main(track_args(run_dir, source, out, "--resume")) == 2
    assert "no tracking run to resume" in capsys.readouterr().err
    assert main(track_args(run_dir, source, out)) == 0
    assert main(track_args(run_dir, source, out, "--resume", "--max-dets", "3")) == 2
    assert "max_dets None -> 3" in capsys.readouterr().err
    settings = out / "partial" / "settings.json"  # as an effowt whose partial chunks held MOT text wrote it
    settings.write_text(json.dumps({k: v for k, v in json.loads(settings.read_text()).items()
                                    if k != "partial_format"}))
    assert main(track_args(run_dir, source, out, "--resume")) == 2
    assert "partial_format None -> 2" in capsys.readouterr().err


# --- 8. odd inputs ------------------------------------------------------------------------


def test_frame_size_change_warns_once_naming_the_frame(run_dir, tmp_path):
    source = write_frames(tmp_path / "v", 2, seed=50)
    for i in (2, 3):
        Image.fromarray(np.zeros((40, 64, 3), np.uint8)).save(source / f"{i:03d}.png")
    with pytest.warns(UserWarning, match=r"002\.png: frame size 64x40 differs") as record:
        assert main(track_args(run_dir, source, tmp_path / "out")) == 0
    assert sum("frame size" in str(w.message) for w in record) == 1


def tiny_gt() -> dict:
    return {"videos": [{"id": 1, "name": "v", "neg_category_ids": [], "not_exhaustive_category_ids": []}],
            "images": [{"id": 10 + t, "video_id": 1, "frame_index": t, "file_name": f"{t}.jpg"}
                       for t in range(2)],
            "annotations": [{"id": 1 + t, "image_id": 10 + t, "video_id": 1, "track_id": 1,
                             "category_id": 4, "bbox": [10, 10, 20, 20]} for t in range(2)],
            "tracks": [{"id": 1, "video_id": 1, "category_id": 4}],
            "categories": [{"id": 4, "name": "cat4"}]}


def test_eval_of_no_boxes_scores_zero(tmp_path, capsys):
    gt, pred = tmp_path / "gt.json", tmp_path / "pred.json"
    gt.write_text(json.dumps(tiny_gt()))
    pred.write_text("[]")
    with pytest.warns(UserWarning, match="results are empty"):
        assert main(["eval", "--gt", str(gt), "--pred", str(pred), "--out", str(tmp_path / "m")]) == 0
    metrics = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert metrics["all"] == {"OWTA": 0.0, "DetRe": 0.0, "AssA": 0.0}
    assert "| all | 0.0 |" in capsys.readouterr().out


def test_eval_refuses_a_huge_box_like_a_nan_box(tmp_path, capsys):
    gt, pred = tmp_path / "gt.json", tmp_path / "pred.json"
    gt.write_text(json.dumps(tiny_gt()))
    for bbox in ([10, 10, 1e308, 20], [10, 10, float("nan"), 20]):
        pred.write_text(json.dumps([{"image_id": 10, "track_id": 1, "bbox": bbox, "score": 0.5}]))
        assert main(["eval", "--gt", str(gt), "--pred", str(pred)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "record 0: bbox must be 4 finite numbers" in err
