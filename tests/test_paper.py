"""The ``paper`` preset: its recipe, ``effowt train --dry-run`` on it, and one real
training step of its architecture (EVA-02-L, random weights) on CPU through the
trainer's own torchrun / DDP set-up, so a broken preset fails here rather than on
a cluster."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

import effowt.training.trainer as trainer_module
from effowt.cli import main
from effowt.config import load_config
from effowt.runs import WEIGHTS_FILE, read_weights
from effowt.training.trainer import EFFICIENCY_FILE, METRICS_FILE
from test_training import make_coco

PRESET = Path(__file__).parents[1] / "src" / "effowt" / "configs" / "paper.yaml"
SOURCES = ("paper", "SimOWT", "QDTrack", "ours", "MiniOWT", "Ladder Side-Tuning", "torchvision")


def dry_run(capsys, data: tuple[Path, Path], out: Path, *extra: str, weights: str = "null") -> tuple[int, str, str]:
    """``train --config paper --dry-run``; ``weights`` overrides the preset's (null: random,
    as the Hub is offline in tests; --backbone-weights in ``extra`` wins over it)."""
    ann_file, image_dir = data
    rc = main(["train", "--config", "paper", "--dry-run", "--data", str(ann_file), "--images", str(image_dir),
               "--out", str(out), *extra, *([] if weights is None else [f"model.backbone.weights={weights}"])])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


@pytest.fixture
def coco(tmp_path: Path) -> tuple[Path, Path]:
    return make_coco(tmp_path / "coco", 4)


def test_every_train_value_names_its_source() -> None:
    lines = PRESET.read_text().splitlines()
    start = lines.index("train:")
    body = [line for line in lines[start + 1 :] if line.startswith("  ") and not line.lstrip().startswith("#")]
    keys = [line for line in body if re.match(r"^  \w+:", line)]
    assert len(keys) >= 15
    for line in keys:
        assert "#" in line and any(s in line.split("#", 1)[1] for s in SOURCES), line
    cfg = load_config("paper")
    recipe = (cfg.train.global_batch, cfg.train.max_steps, cfg.train.lr, cfg.train.backbone_lr_mult)
    assert recipe == (8, 163250, 2e-4, 0.1)


def test_dry_run_prints_the_recipe_for_the_world_size(coco, tmp_path, capsys, monkeypatch) -> None:
    image = coco[1] / "0.png"
    image.write_bytes(b"not an image")  # the dry run must not open images
    out = tmp_path / "run"
    monkeypatch.setenv("WORLD_SIZE", "8")
    rc, text, err = dry_run(capsys, coco, out)
    assert rc == 0, err
    assert "1 per process x 8 process(es)" in text
    assert "163,250 steps x 8 = 1,306,000 images seen = 326500.00 epochs of 4 images" in text
    rows = {line.split()[0]: line.split() for line in text.splitlines() if line.startswith("  new/")}
    assert set(rows) == {"new/decay", "new/no_decay"}
    header = next(line.split() for line in text.splitlines() if line.lstrip().startswith("group"))
    assert header[3:] == ["1", "11", "81626", "122439", "163250"]  # first, after warm-up, milestones, last
    assert [float(v) for v in rows["new/decay"][3:]] == pytest.approx([2e-5, 2e-4, 2e-5, 2e-6, 2e-6])
    assert "backbone: no trainable parameter" in text
    assert not out.exists()  # nothing written

    monkeypatch.setenv("WORLD_SIZE", "2")
    rc, text, _ = dry_run(capsys, coco, out, "--mode", "full", "train.accumulate=2")
    assert rc == 0 and "2 per process x 2 process(es)" in text
    backbone = next(line.split() for line in text.splitlines() if line.startswith("  backbone/decay"))
    assert float(backbone[4]) == pytest.approx(2e-5)  # lr x backbone_lr_mult after warm-up


def test_dry_run_names_each_missing_path_on_one_line(coco, tmp_path, capsys) -> None:
    ann_file, image_dir = coco
    missing = (tmp_path / "no.json", tmp_path / "no-images")
    rc, text, err = dry_run(capsys, missing, tmp_path / "run", "--backbone-weights", str(tmp_path / "eva.safetensors"))
    assert rc == 1
    lines = err.strip().splitlines()
    assert len(lines) == 3
    for line, path in zip(lines, (*missing, tmp_path / "eva.safetensors")):
        assert line.startswith("effowt train --dry-run: ") and str(path) in line
    assert "163,250 steps" in text  # the report is still printed

    (image_dir / "0.png").unlink()
    rc, _, err = dry_run(capsys, coco, tmp_path / "run")
    assert rc == 1 and err.count("\n") == 1 and "'0.png'" in err  # --images is the wrong folder


def test_preset_names_its_official_weights_and_offline_says_what_to_download(coco, tmp_path, capsys,
                                                                           monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    assert load_config("paper").model.backbone.weights == "hf-hub:timm/eva02_large_patch14_clip_224.merged2b"
    rc, text, err = dry_run(capsys, coco, tmp_path / "run", weights=None)
    assert rc == 1 and err.count("\n") == 1
    assert "hf download timm/eva02_large_patch14_clip_224.merged2b model.safetensors" in err
    assert str(tmp_path / "empty-cache") in err and "HF_HUB_OFFLINE is set" in err


def test_dry_run_batch_that_does_not_split_is_one_error(coco, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "3")
    rc, _, err = dry_run(capsys, coco, tmp_path / "run")
    assert rc == 2 and err.count("\n") == 1 and "train.global_batch=8" in err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_paper_preset_trains_one_step_under_torchrun_ddp(tmp_path, monkeypatch) -> None:
    """EVA-02-L (random weights) + the paper's side network and heads, 64 px, batch 1,
    one step, through ``effowt train`` with torchrun's variables for a world of one
    (gloo process group, DistributedDataParallel). Measured here: 12 s alone, 23 s in the
    parallel suite, 2.6 GB peak RSS: marked slow (out of the quick suite, in `make test`)."""
    ann_file, image_dir = make_coco(tmp_path / "coco", 1)
    run = tmp_path / "run"
    for name, value in {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1",
                        "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port())}.items():
        monkeypatch.setenv(name, value)
    wrapped = []

    def spy(module, **kwargs):
        wrapped.append((dist.get_backend(), dist.get_world_size()))
        ddp = torch.nn.parallel.DistributedDataParallel(module, **kwargs)
        wrapped.append(ddp)
        return ddp

    monkeypatch.setattr(trainer_module, "DistributedDataParallel", spy)
    rc = main(["train", "--config", "paper", "--data", str(ann_file), "--images", str(image_dir), "--out", str(run),
               "--device", "cpu", "--max-steps", "1", "model.image_size=64", "data.image_size=64",
               "train.global_batch=1", "data.num_workers=0", "model.backbone.weights=null"])
    assert rc == 0
    assert wrapped[0] == ("gloo", 1) and not dist.is_initialized()
    model = wrapped[1].module
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for _, p in model.named_trainable_parameters())
    assert all(p.grad is None for p in model.backbone.parameters())  # the backbone stays out of backprop
    report = json.loads((run / EFFICIENCY_FILE).read_text())
    assert report["world_size"] == 1 and report["batch_size"] == 1 and report["total"] > 300_000_000
    [row] = [r for r in map(json.loads, (run / METRICS_FILE).read_text().splitlines()) if "event" not in r]
    assert row["step"] == 1 and row["lr"] == pytest.approx(2e-5)  # the preset's lr, first warm-up step
    assert read_weights(run / WEIGHTS_FILE)[1]["step"] == "1"
