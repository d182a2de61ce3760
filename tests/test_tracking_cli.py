"""`effowt track` end to end: mini preset with random weights saved as a run folder,
MiniOWT videos, then `effowt eval` on the results."""

import json

import pytest

from conftest import open_threshold_run
from effowt.cli import main
from effowt.errors import ConfigError


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from effowt.data.miniowt import generate_miniowt

    root = tmp_path_factory.mktemp("e2e")
    paths = generate_miniowt(root / "miniowt", size=64, train_images=0, pretrain_images=0,
                             val_videos=2, frames=4, progress=False)
    run = open_threshold_run(root)
    return {"run": run, **paths.as_dict()}


@pytest.mark.slow
def test_track_tao_split_with_workers_then_eval(world, tmp_path):
    out = tmp_path / "out"
    assert main(["track", "--weights", str(world["run"]), "--source", str(world["val_json"]),
                 "--out", str(out), "--workers", "2", "--max-dets", "5", "--render", "--profile"]) == 0
    gt = json.loads(world["val_json"].read_text())
    results = json.loads((out / "results.json").read_text())
    image_ids = {img["id"] for img in gt["images"]}
    assert results and {r["image_id"] for r in results} <= image_ids
    per_image = {}
    for r in results:
        per_image.setdefault(r["image_id"], []).append(r["track_id"])
    assert max(len(v) for v in per_image.values()) <= 5
    assert all(len(set(v)) == len(v) for v in per_image.values())
    names = sorted(p.stem for p in (out / "partial").glob("*.jsonl"))
    assert len(names) == 2
    assert sorted(p.stem for p in (out / "mot").iterdir()) == names
    assert sorted(p.name for p in (out / "render").iterdir()) == sorted(
        f"{n}{suffix}" for n in names for suffix in (".mp4", ".png"))
    speed = json.loads((out / "speed.json").read_text())
    assert speed["workers"] == 2 and speed["frames"] == 8
    assert {"backbone", "neck", "heads", "association", "io"} <= set(speed["per_frame_ms"])

    metrics_dir = tmp_path / "metrics"
    assert main(["eval", "--gt", str(world["val_json"]), "--pred", str(out / "results.json"),
                 "--out", str(metrics_dir)]) == 0
    metrics = json.loads((metrics_dir / "metrics.json").read_text())
    assert all(0.0 <= metrics[s][m] <= 1.0 for s in metrics for m in metrics[s])


def test_track_video_file_synthesises_ids(world, tmp_path, capsys):
    video = sorted(world["val_videos"].glob("*.mp4"))[0]
    out = tmp_path / "out"
    assert main(["track", "--weights", str(world["run"]), "--source", str(video),
                 "--out", str(out)]) == 0
    assert "synthetic" in capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert {r["video_id"] for r in results} == {1}
    assert {r["image_id"] for r in results} <= {1_000_001 + i for i in range(4)}
    assert json.loads((out / "videos.json").read_text())[0]["synthetic_ids"] is True


def test_from_pretrained_applies_overrides(world):
    import numpy as np

    from effowt.tracking import Tracker

    tracker = Tracker.from_pretrained(world["run"], tracker_overrides={"max_dets": 3})
    assert tracker.cfg.max_dets == 3 and tracker.cfg.det_thresh == 0.0  # run's cfg + override
    assert tracker.image_size == 128
    tracks = tracker.update(np.zeros((48, 80, 3), np.uint8))
    assert 0 < len(tracks) <= 3
    assert all(0 <= t.box[0] <= t.box[2] <= 80 and 0 <= t.box[1] <= t.box[3] <= 48 for t in tracks)
    with pytest.raises(ValueError, match="max_det"):
        Tracker.from_pretrained(world["run"], tracker_overrides={"max_det": 3})


def test_shipped_checkpoint_says_what_it_is_for(tmp_path, capsys, monkeypatch):
    import numpy as np
    from PIL import Image

    from effowt.data.miniowt import is_miniowt_source

    frames = tmp_path / "street"
    frames.mkdir()
    for i in range(2):
        Image.fromarray(np.full((40, 64, 3), 90 + i, np.uint8)).save(frames / f"{i}.png")
    assert not is_miniowt_source(frames)
    assert main(["track", "--weights", "effowt-mini", "--source", str(frames), "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    notes = [line for line in printed.splitlines() if line.startswith("note:") and "source has no TAO ids" not in line]
    assert len(notes) == 2  # not a MiniOWT source; no boxes at all
    assert "not a MiniOWT source" in notes[0] and "no boxes at all" in notes[1]
    assert all("--weights RUN" in n and "--detections" in n for n in notes)
    monkeypatch.setenv("RANK", "1")  # under torchrun only rank 0 says it (once for the whole run)
    assert main(["track", "--weights", "effowt-mini", "--source", str(frames), "--out", str(tmp_path / "out1")]) == 0
    assert "not a MiniOWT source" not in capsys.readouterr().out


def test_miniowt_sources_are_recognised(world):
    from effowt.data.miniowt import is_miniowt_source

    video = sorted(world["val_videos"].glob("*.mp4"))[0]
    folder = sorted(world["val_frames"].iterdir())[0]
    assert all(is_miniowt_source(p) for p in (world["val_json"], video, folder))


def test_tracker_overrides_are_checked_and_recorded(world, tmp_path, capsys):
    video = sorted(world["val_videos"].glob("*.mp4"))[0]
    out = tmp_path / "out"
    assert main(["track", "--weights", str(world["run"]), "--source", str(video), "--out", str(out),
                 "tracker.max_lost=2", "tracker.init_thresh=0.25"]) == 0
    recorded = json.loads((out / "tracker.json").read_text())
    assert recorded["overrides"] == {"max_lost": 2, "init_thresh": 0.25}
    assert recorded["tracker"]["max_lost"] == 2 and recorded["tracker"]["det_thresh"] == 0.0  # the run's
    for bad, message in (("tracker.max_lst=2", "unknown key 'tracker.max_lst'"),
                         ("tracker.det_thresh=2", "tracker.det_thresh=2.0: out of range, must be in [0, 1]"),
                         ("train.lr=1", "only tracker.KEY=VALUE")):
        capsys.readouterr()
        assert main(["track", "--weights", str(world["run"]), "--source", str(video),
                     "--out", str(tmp_path / "bad"), bad]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0]


def test_a_run_reads_its_config_once_and_the_tracker_gets_the_resolved_settings(world, tmp_path, monkeypatch):
    import effowt.runs as runs_module
    import effowt.tracking.pipeline as pipeline
    from effowt.tracking import Tracker

    reads, built = [], []
    load_config, from_pretrained = pipeline.load_config, Tracker.from_pretrained

    def counting_load_config(source, *args, **kwargs):
        reads.append(source)
        return load_config(source, *args, **kwargs)

    def spying_from_pretrained(*args, **kwargs):
        built.append(kwargs)
        return from_pretrained(*args, **kwargs)

    monkeypatch.setattr(pipeline, "load_config", counting_load_config)
    monkeypatch.setattr(runs_module, "load_config", counting_load_config)
    monkeypatch.setattr(pipeline.Tracker, "from_pretrained", spying_from_pretrained)
    video = sorted(world["val_videos"].glob("*.mp4"))[0]
    assert main(["track", "--weights", str(world["run"]), "--source", str(video), "--out", str(tmp_path / "out"),
                 "--max-dets", "4", "tracker.max_lost=2"]) == 0
    assert len(reads) == 1  # the run's config.yaml, read once for the whole run (the model is built from it)
    [kwargs] = built  # the tracker is built from that config resolved once, not from the overrides again
    assert kwargs.get("tracker_overrides") is None
    tracker_cfg = kwargs["config"].tracker
    assert (tracker_cfg.max_dets, tracker_cfg.max_lost, tracker_cfg.det_thresh) == (4, 2, 0.0)
    with pytest.raises(ConfigError, match="set the cap one way"):
        pipeline.track_source(video, tmp_path / "both", run_dir=world["run"], max_dets=3,
                              tracker_overrides={"max_dets": 5})


def test_bench_tracker_sweeps_thresholds(world, tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(["bench", "tracker", "--weights", str(world["run"]), "--data", str(world["val_json"]),
                 "--grid", "tracker.init_thresh=0.0,0.5", "--grid", "max_lost=3", "--out", str(out)]) == 0
    report = json.loads((out / "tracker-sweep.json").read_text())
    assert [r["settings"] for r in report["rows"]] == [{"init_thresh": 0.0, "max_lost": 3},
                                                       {"init_thresh": 0.5, "max_lost": 3}]
    assert all(set(r["known"]) == {"OWTA", "DetRe", "AssA"} for r in report["rows"])
    assert (out / "tracker-sweep.png").stat().st_size > 0
    assert "| init_thresh | max_lost | known OWTA" in capsys.readouterr().out


def _records(out):
    return sorted(json.loads((out / "results.json").read_text()),
                  key=lambda r: (r["image_id"], r["track_id"]))


def test_batched_frames_write_the_same_results_and_no_stage_split_by_default(world, tmp_path):
    one, four = tmp_path / "one", tmp_path / "four"
    args = ["track", "--weights", str(world["run"]), "--source", str(world["val_json"]), "--max-dets", "5"]
    assert main([*args, "--out", str(one)]) == 0
    assert main([*args, "--out", str(four), "--batch-frames", "3"]) == 0
    a, b = _records(one), _records(four)
    assert [(r["image_id"], r["track_id"]) for r in a] == [(r["image_id"], r["track_id"]) for r in b]
    for x, y in zip(a, b):
        assert x["bbox"] == pytest.approx(y["bbox"], abs=1e-2)
    speed = json.loads((one / "speed.json").read_text())
    assert set(speed["per_frame_ms"]) == {"preprocess", "model", "association", "io", "total"}
    assert speed["world_size"] == 1 and speed["videos_per_rank"] == [2]


@pytest.mark.slow
def test_threads_sets_the_tracking_process_thread_count_and_keeps_the_tracks(world, tmp_path):
    import torch

    before = torch.get_num_threads()
    args = ["track", "--weights", str(world["run"]), "--source", str(world["val_json"]), "--max-dets", "5"]
    try:
        torch.set_num_threads(2)
        assert main([*args, "--out", str(tmp_path / "default")]) == 0
        assert torch.get_num_threads() == 1  # the default for a model under 20 M parameters
        assert main([*args, "--out", str(tmp_path / "one"), "--threads", "2"]) == 0
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    a, b = _records(tmp_path / "default"), _records(tmp_path / "one")
    assert [(r["image_id"], r["track_id"]) for r in a] == [(r["image_id"], r["track_id"]) for r in b]


@pytest.fixture(scope="module")
def four_videos(world, tmp_path_factory):
    from effowt.data.miniowt import generate_miniowt

    root = tmp_path_factory.mktemp("four")
    return generate_miniowt(root / "miniowt", size=64, train_images=0, pretrain_images=0, val_videos=4,
                            frames=3, seed=3, progress=False).val_json


def _track_process(args, nproc=None):
    import os
    import subprocess
    import sys

    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"] if nproc else []
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, *launcher, "-m", "effowt", "track", *args], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_torchrun_shards_videos_and_rank0_merges_the_same_records(world, four_videos, tmp_path):
    single, sharded = tmp_path / "single", tmp_path / "sharded"
    args = ["--weights", str(world["run"]), "--source", str(four_videos), "--max-dets", "4"]
    _track_process([*args, "--out", str(single)])
    proc = _track_process([*args, "--out", str(sharded)], nproc=2)
    assert _records(sharded) == _records(single)
    assert proc.stdout.count("tracked 4/4 video(s)") == 1  # rank 0 alone reports
    speed = json.loads((sharded / "speed.json").read_text())
    assert speed["world_size"] == 2 and speed["videos_per_rank"] == [2, 2] and speed["frames"] == 12
    assert not (sharded / ".effowt.lock").exists()

    # resume under torchrun: the video whose partial file lost its end line is tracked again
    partial = sorted((sharded / "partial").glob("*.jsonl"))[1]
    partial.write_text("".join(partial.read_text().splitlines(keepends=True)[:-1]))
    _track_process([*args, "--out", str(sharded), "--resume"], nproc=2)
    assert _records(sharded) == _records(single)
    assert json.loads((sharded / "speed.json").read_text())["videos_per_rank"] == [1, 0]
