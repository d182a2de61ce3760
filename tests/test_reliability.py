"""Issue 26: every bad input refused in one line (exit 2, no traceback, nothing written),
or the now-correct result; one test per item of the issue (1-12), then threads,
progress and checkpoints by time. Model: the ``mini`` preset with random weights;
videos: folders of a few small PNG frames."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

import effowt.training.trainer as trainer_module
from effowt.cli import main
from effowt.config import load_config
from effowt.data.sources import load_rgb
from effowt.errors import ConfigError, DataError, WeightsError
from effowt.runs import WEIGHTS_FILE, build_seeded_model, load_run, save_run
from effowt.threads import SMALL_MODEL_PARAMS, default_threads, usable_cores
from effowt.tracking.tracker import Tracker, check_detections
from test_training import TINY, make_coco

OPEN = ["model.head.score_thresh=0.0", "tracker.det_thresh=0.0", "tracker.init_thresh=0.0"]


def one_line_error(capsys: pytest.CaptureFixture[str], *fragments: str) -> str:
    """The command's stderr: one ``error:`` line holding every fragment, no traceback."""
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def write_frames(folder: Path, count: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(folder / f"{i:03d}.png")
    return folder


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cfg = load_config("mini", OPEN)
    return save_run(tmp_path_factory.mktemp("run") / "run", build_seeded_model(cfg), cfg)


# 1. 16-bit PNG frames are read at their real range (not clipped to white)
def test_16_bit_png_is_read_at_its_real_range(tmp_path: Path) -> None:
    values = np.linspace(0, 65535, 48 * 64).reshape(48, 64).astype(np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I;16")
    rgb = load_rgb(tmp_path / "deep.png")
    assert rgb.shape == (48, 64, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0].tolist() == [0, 0, 0] and rgb[-1, -1].tolist() == [255, 255, 255]
    assert abs(int(rgb[24, 0, 0]) - 128) <= 2 and (rgb == 255).mean() < 0.01
    eight = (values / 257).round().astype(np.uint8)  # the same picture in 8 bits reads alike
    Image.fromarray(eight).save(tmp_path / "eight.png")
    assert np.abs(load_rgb(tmp_path / "eight.png").astype(int) - rgb.astype(int)).max() <= 1


# 2. an output folder inside a folder source is refused before anything is written
@pytest.mark.parametrize("inside", ["", "out", "out/deeper"])
def test_out_inside_a_folder_source_is_refused(tmp_path: Path, run_dir: Path, capsys, inside: str) -> None:
    source = tmp_path / "videos"
    write_frames(source / "a", 2)
    before = sorted(p.relative_to(source) for p in source.rglob("*"))
    out = source / inside if inside else source
    assert main(["track", "--weights", str(run_dir), "--source", str(source), "--out", str(out)]) == 2
    one_line_error(capsys, "is inside the source folder", "choose an output folder outside it")
    assert sorted(p.relative_to(source) for p in source.rglob("*")) == before


# 3. an empty --source or --out is an error, not the current folder
@pytest.mark.parametrize("empty, fragment", [("source", "the source path is empty"),
                                             ("out", "the output folder is empty")])
def test_empty_source_or_out_is_an_error(tmp_path: Path, run_dir: Path, capsys, monkeypatch,
                                         empty: str, fragment: str) -> None:
    write_frames(tmp_path / "frames", 2)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    paths = {"source": str(tmp_path / "frames"), "out": str(tmp_path / "out"), empty: ""}
    assert main(["track", "--weights", str(run_dir), "--source", paths["source"], "--out", paths["out"]]) == 2
    one_line_error(capsys, fragment)
    assert list(cwd.iterdir()) == [] and not (tmp_path / "out").exists()


# 4. external detections: empty / outside boxes are no tracks; a frame or an image id
#    the source lacks is an error in both formats; a float image id says so
def test_zero_size_and_outside_boxes_are_dropped() -> None:
    boxes = [[10, 10, 10, 30], [100, 100, 120, 120], [-30, 5, -10, 20], [5, 5, 20, 20]]
    kept, scores, cats = check_detections((boxes, [0.9, 0.8, 0.7, 0.6], [1, 2, 3, 4]), (48, 64))
    assert kept.tolist() == [[5, 5, 20, 20]] and scores.tolist() == pytest.approx([0.6]) and cats.tolist() == [4]


def test_mot_frame_past_the_video_is_an_error(tmp_path: Path, run_dir: Path, capsys) -> None:
    write_frames(tmp_path / "src" / "a", 3)
    dets = tmp_path / "dets"
    dets.mkdir()
    (dets / "a.txt").write_text("1,-1,5,5,10,10,0.9\n7,-1,5,5,10,10,0.9\n")
    args = ["track", "--weights", str(run_dir), "--source", str(tmp_path / "src"), "--detections", str(dets)]
    assert main([*args, "--out", str(tmp_path / "out")]) == 2
    one_line_error(capsys, "a.txt:2: frame 7 is not in video a, which has 3 frames")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("image_id, fragment", [
    (1_000_004, "1 image id(s) are not in the source (e.g. 1000004)"),  # frame index 3 of a 3-frame video
    (1_000_001.0, "image_id must be an integer, got 1000001.0"),
])
def test_coco_detections_frame_past_the_video_or_float_id(tmp_path: Path, run_dir: Path, capsys,
                                                         image_id: float, fragment: str) -> None:
    write_frames(tmp_path / "a", 3)
    dets = tmp_path / "dets.json"
    dets.write_text(json.dumps([{"image_id": image_id, "bbox": [5, 5, 10, 10], "score": 0.9}]))
    args = ["track", "--weights", str(run_dir), "--source", str(tmp_path / "a"), "--detections", str(dets)]
    assert main([*args, "--out", str(tmp_path / "out")]) == 2
    one_line_error(capsys, fragment)
    assert not (tmp_path / "out").exists()


# 5. a prompt needs exactly one {}
@pytest.mark.parametrize("prompt", ["{{}}", "{} and {}", "a photo of {0}", "no field"])
def test_prompt_needs_exactly_one_field(tmp_path: Path, capsys, prompt: str) -> None:
    write_frames(tmp_path / "a", 1)
    args = ["track", "--source", str(tmp_path / "a"), "--out", str(tmp_path / "out"), "--texts", "a dog"]
    assert main([*args, "--prompt", prompt]) == 2
    one_line_error(capsys, "a prompt needs exactly one {}")
    assert not (tmp_path / "out").exists()  # no partial/settings.json


# 6. NaN / inf are refused wherever a config takes a number
@pytest.mark.parametrize("override", ["tracker.det_thresh=.nan", "tracker.momentum=.nan", "tracker.iou_gate=.nan",
                                      "tracker.min_cosine=.nan", "tracker.nms_thresh=.inf"])
def test_non_finite_tracker_settings_are_refused(tmp_path: Path, run_dir: Path, capsys, override: str) -> None:
    write_frames(tmp_path / "a", 1)
    args = ["track", "--weights", str(run_dir), "--source", str(tmp_path / "a"), "--out", str(tmp_path / "out")]
    assert main([*args, override]) == 2
    one_line_error(capsys, f"{override.split('=')[0]} must be a finite number")
    assert not (tmp_path / "out").exists()  # no tracker.json with a bare NaN


def test_non_finite_train_settings_are_refused(tmp_path: Path, capsys) -> None:
    args = ["train", "--config", "mini", "--data", "x.json", "--images", "x", "--out", str(tmp_path / "run"),
            "--dry-run", "train.lr=.nan"]
    assert main(args) == 2
    one_line_error(capsys, "train.lr must be a finite number, got nan")
    (tmp_path / "c.yaml").write_text("data:\n  scale: [0.5, .inf]\n")
    with pytest.raises(ConfigError, match=r"data.scale must be a finite number, got inf"):
        load_config(str(tmp_path / "c.yaml"))


# 7. a checkpoint whose tensors changed dtype is refused like a changed shape
def test_checkpoint_cast_to_int32_is_refused(tmp_path: Path) -> None:
    cfg = load_config("mini")
    run = save_run(tmp_path / "run", build_seeded_model(cfg), cfg)
    with safe_open(str(run / WEIGHTS_FILE), "pt") as f:
        metadata = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    save_file({k: v.to(torch.int32) for k, v in tensors.items()}, str(run / WEIGHTS_FILE), metadata=metadata)
    with pytest.raises(WeightsError, match=r"dtype mismatch: .*\(checkpoint torch.int32 vs model torch.float32\)"):
        load_run(run)


# 8. synth over an older world replaces it (no old frame or video left); a folder that
#    is not a world is refused untouched
def test_synth_replaces_an_older_world(tmp_path: Path, capsys) -> None:
    out = tmp_path / "w"
    small = ["--size", "32", "--train-images", "1", "--pretrain-images", "0", "--frames", "2"]
    assert main(["synth", "--out", str(out), *small, "--val-videos", "2"]) == 0
    assert (out / "val" / "videos" / "video_001.mp4").is_file()
    capsys.readouterr()
    with pytest.warns(UserWarning, match=r"replaced the older world there \(removed train/, pretrain/, val/\)"):
        assert main(["synth", "--out", str(out), *small, "--val-videos", "1"]) == 0
    assert sorted(p.name for p in (out / "val" / "videos").iterdir()) == ["video_000.mp4"]
    assert sorted(p.name for p in (out / "val" / "frames").iterdir()) == ["video_000"]
    (out / "val" / "mine.txt").write_text("keep me")
    before = sorted(out.rglob("*"))
    assert main(["synth", "--out", str(out), *small, "--val-videos", "1"]) == 2
    one_line_error(capsys, "mine.txt", "not part of a MiniOWT world")
    assert sorted(out.rglob("*")) == before


# 9. Python API: a string of texts and a backwards box are clear errors
def test_api_refuses_texts_as_a_string_and_backwards_boxes() -> None:
    with pytest.raises(ConfigError, match="texts must be a list of strings, got the string 'a dog; a cat'"):
        Tracker.from_pretrained(None, texts="a dog; a cat")
    cfg = load_config("mini", OPEN)
    tracker = Tracker(build_seeded_model(cfg).eval(), cfg.tracker)
    frame = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(DataError, match=r"box 0 \[50.0, 50.0, 10.0, 10.0\] is backwards"):
        tracker.update(frame, detections=([[50, 50, 10, 10]], [0.9]))
    assert tracker.update(frame, detections=([[10, 10, 50, 50]], [0.9]))[0].track_id == 1


# 10. a YAML anchor bomb in one value prints a short error line
def test_yaml_anchor_bomb_error_is_short(tmp_path: Path, capsys) -> None:
    levels = ['&a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for name, prev in zip("bcdefgh", "abcdefg"):  # 9**8 strings once expanded
        levels.append(f"&{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    config = tmp_path / "bomb.yaml"
    config.write_text("train:\n  lr: [\n" + "".join(f"    {level},\n" for level in levels) + "  ]\n")
    assert len(config.read_bytes()) < 1200
    assert main(["params", "--config", str(config)]) == 2
    assert len(one_line_error(capsys, "train.lr must be float, got [")) < 400


# 11. synth sizes are bounded up front, the limit named
@pytest.mark.parametrize("option, value, fragment", [("--size", "100000", "--size 100000: must be in [32, 2048]"),
                                                     ("--seed", "-1", "--seed -1: must be in [0, 4294967295]")])
def test_synth_bounds_are_checked_up_front(tmp_path: Path, capsys, option: str, value: str, fragment: str) -> None:
    assert main(["synth", "--out", str(tmp_path / "w"), option, value]) == 2
    one_line_error(capsys, fragment)
    assert not (tmp_path / "w").exists()


# 12. train checks every input before it writes anything; a folder never trained is no run
def test_train_with_missing_images_writes_nothing(tmp_path: Path, capsys) -> None:
    ann, images = make_coco(tmp_path / "coco", 4)
    for name in ("0.png", "2.png"):
        (images / name).unlink()
    out = tmp_path / "run"
    assert main(["train", "--config", "mini", "--data", str(ann), "--images", str(images), "--out", str(out),
                 "--max-steps", "1", *TINY]) == 2
    one_line_error(capsys, "2 of the 4 images", "are missing, first: 0.png")
    assert not out.exists()


def test_train_with_missing_backbone_weights_writes_nothing(tmp_path: Path, capsys) -> None:
    ann, images = make_coco(tmp_path / "coco", 2)
    out = tmp_path / "runs" / "coco"
    args = ["train", "--config", "mini", "--data", str(ann), "--images", str(images), "--out", str(out),
            "--max-steps", "1", *TINY]
    assert main([*args, "--backbone-weights", str(tmp_path / "eva02_L.safetensors")]) == 2
    one_line_error(capsys, "eva02_L.safetensors")
    assert not out.exists()
    out.mkdir(parents=True)  # a folder from an older version that was never trained
    (out / "config.yaml").write_text("{}\n")
    assert main([*args, "--dry-run"]) == 0
    assert "exists, no checkpoint: not a run yet" in capsys.readouterr().out


# 13. threads: one for a small model, the usable cores otherwise
def test_default_threads_follow_model_size_and_affinity(monkeypatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert usable_cores() == 4
    assert default_threads(SMALL_MODEL_PARAMS - 1) == 1
    assert default_threads(SMALL_MODEL_PARAMS) == 4 and default_threads(10**8, processes=2) == 2
    assert default_threads(None, processes=8) == 1


@pytest.mark.parametrize("command", [["demo"], ["train", "--data", "x", "--images", "x", "--out", "x"],
                                     ["bench", "speed"], ["bench", "accuracy"], ["track", "--source", "x",
                                                                                 "--out", "x"]])
def test_threads_and_quiet_on_every_computing_command(command: list[str], capsys) -> None:
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--threads THREADS" in text and "--quiet" in text


# 14. training lines every log_every steps on a terminal, none when piped or --quiet
def test_training_progress_lines(tmp_path: Path, capsys, monkeypatch) -> None:
    ann, images = make_coco(tmp_path / "coco", 4)
    args = ["train", "--config", "mini", "--data", str(ann), "--images", str(images), "--max-steps", "2"]
    assert main([*args, "--out", str(tmp_path / "piped"), *TINY, "train.log_every=1"]) == 0
    assert "step 1/2" not in capsys.readouterr().err  # not a terminal: no progress lines
    monkeypatch.setattr(trainer_module, "show_progress", lambda: True)
    assert main([*args, "--out", str(tmp_path / "tty"), *TINY, "train.log_every=1"]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("step ")]
    assert [line.split()[1] for line in lines] == ["1/2", "2/2"]
    assert all("loss_cls" in line and " lr " in line and "s/step" in line and "ETA" in line for line in lines)


# 15. checkpoints by time as well as by steps
def test_checkpoint_by_time(tmp_path: Path, monkeypatch) -> None:
    ann, images = make_coco(tmp_path / "coco", 4)
    saved: list[int] = []
    original = trainer_module.Trainer.checkpoint

    def record(self: trainer_module.Trainer) -> None:
        saved.append(self.step)
        original(self)

    monkeypatch.setattr(trainer_module.Trainer, "checkpoint", record)
    args = ["train", "--config", "mini", "--data", str(ann), "--images", str(images), "--max-steps", "3"]
    assert main([*args, "--out", str(tmp_path / "steps"), *TINY, "train.checkpoint_every=1000"]) == 0
    assert saved == [3]  # the default 300 s never passed: the end's checkpoint only
    saved.clear()
    assert main([*args, "--out", str(tmp_path / "time"), *TINY, "train.checkpoint_every=1000",
                 "train.checkpoint_every_s=1e-9"]) == 0
    assert saved == [1, 2, 3]
