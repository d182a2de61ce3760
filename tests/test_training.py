"""``effowt train`` end to end on a tiny generated COCO set (open_clip's
test_training_simple habit): the real entry point, the ``mini`` preset at 64 px,
a few CPU steps per test."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from safetensors.torch import save_file

import effowt.training.trainer as trainer_module
from effowt.cli import main
from effowt.config import load_config
from effowt.errors import WeightsError
from effowt.runs import CONFIG_FILE, WEIGHTS_FILE, build_seeded_model, load_run, read_weights, save_run
from effowt.training.resume import STATE_FILE, load_train_state, save_train_state
from effowt.training.trainer import EFFICIENCY_FILE, LOSS_PLOT_FILE, METRICS_FILE

TINY = ["model.image_size=64", "data.image_size=64", "train.batch_size=2", "train.warmup_steps=0"]
NO_AUGMENTATION = ["data.scale=[1.0, 1.0]", "data.ratio=[1.0, 1.0]", "data.hflip=0.0", "data.color_jitter=0.0"]


def make_coco(root: Path, n_images: int, size: int = 64, seed: int = 0) -> tuple[Path, Path]:
    """``n_images`` noisy images with two bright rectangles each, as a COCO json."""
    rng = np.random.default_rng(seed)
    image_dir = root / "images"
    image_dir.mkdir(parents=True)
    images, annotations = [], []
    for i in range(n_images):
        pixels = (rng.random((size, size, 3)) * 60).astype(np.uint8)
        for _ in range(2):
            x, y = (int(v) for v in rng.integers(2, size // 2, 2))
            w, h = (int(v) for v in rng.integers(12, size // 2, 2))
            pixels[y : y + h, x : x + w] = rng.integers(100, 255, 3)
            annotations.append(
                {"id": len(annotations) + 1, "image_id": i + 1, "category_id": 1,
                 "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0}
            )
        Image.fromarray(pixels).save(image_dir / f"{i}.png")
        images.append({"id": i + 1, "file_name": f"{i}.png", "width": size, "height": size})
    ann_file = root / "train.json"
    categories = [{"id": 1, "name": "box"}]
    ann_file.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return ann_file, image_dir


@pytest.fixture(scope="module")
def coco(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Five images: two batches of two per epoch (drop_last), so runs cross epochs mid-way."""
    return make_coco(tmp_path_factory.mktemp("coco"), 5)


@pytest.fixture(scope="module")
def one_batch(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_coco(tmp_path_factory.mktemp("coco1"), 2)


def train_args(data: tuple[Path, Path], out: Path, *options: str, overrides: tuple[str, ...] = ()) -> list[str]:
    """``effowt train`` arguments: options first, then the ``key=value`` overrides."""
    ann_file, image_dir = data
    return ["train", "--config", "mini", "--data", str(ann_file), "--images", str(image_dir),
            "--out", str(out), "--device", "cpu", *options, *TINY, *overrides]


def step_rows(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / METRICS_FILE).read_text().splitlines()]
    return [r for r in rows if "event" not in r]


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[torch.nn.Module]:
    """The model objects ``effowt train`` builds, with a copy of their frozen
    parameters taken before training."""
    models: list[torch.nn.Module] = []
    build = trainer_module.build_seeded_model

    def build_and_keep(cfg):
        model = build(cfg)
        model.frozen_before = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
        models.append(model)
        return model

    monkeypatch.setattr(trainer_module, "build_seeded_model", build_and_keep)
    return models


@pytest.mark.parametrize("mode", ["side", "head", "full", "lora"])
def test_each_mode_overfits_one_batch(mode, one_batch, tmp_path, captured) -> None:
    run = tmp_path / "run"
    overrides = ("train.lr=0.002", "train.log_every=1", *NO_AUGMENTATION)
    assert main(train_args(one_batch, run, "--mode", mode, "--max-steps", "12", overrides=overrides)) == 0
    totals = [r["total"] for r in step_rows(run)]
    assert len(totals) == 12
    assert totals[-1] < 0.75 * totals[0]
    model = captured[0]
    backbone = {n: p for n, p in model.named_parameters() if n.startswith("backbone.") and "lora_" not in n}
    if mode == "full":
        assert not model.frozen_before
        assert any(p.requires_grad for p in backbone.values())
    else:  # the backbone's own weights are frozen and bit-identical after training
        assert set(backbone) <= set(model.frozen_before)
        assert all(torch.equal(model.frozen_before[n], p) for n, p in model.named_parameters() if not p.requires_grad)
    if mode == "lora":
        assert any("lora_" in n and p.requires_grad for n, p in model.named_parameters())


def test_run_folder_contents_and_load_run(coco, tmp_path, captured) -> None:
    run = tmp_path / "run"
    assert main(train_args(coco, run, "--max-steps", "3", overrides=("train.log_every=2", "train.accumulate=2"))) == 0
    assert {p.name for p in run.iterdir()} == {
        CONFIG_FILE, WEIGHTS_FILE, STATE_FILE, METRICS_FILE, EFFICIENCY_FILE, LOSS_PLOT_FILE
    }
    assert (run / LOSS_PLOT_FILE).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = step_rows(run)
    assert [r["step"] for r in rows] == [2, 3]  # every log_every steps and the last
    expected = {"step", "lr", "loss_cls", "loss_box", "loss_ctr", "loss_reid", "loss_reid_aux",
                "total", "images_per_s", "step_s"}
    assert expected <= set(rows[0])
    events = [json.loads(line) for line in (run / METRICS_FILE).read_text().splitlines()]
    assert [e["phase"] for e in events if e.get("event") == "efficiency"] == ["start", "end"]
    report = json.loads((run / EFFICIENCY_FILE).read_text())
    assert report["memory_kind"] == "peak_rss" and report["peak_mem_bytes"] > 0
    assert 0 < report["trainable"] < report["total"]
    assert report["step_s"] > 0 and report["images_per_s"] > 0

    tensors, meta = read_weights(run / WEIGHTS_FILE)
    assert meta["step"] == "3"
    # 3 steps x 2 accumulated micro-batches, 2 batches per epoch: the end of epoch 2
    assert load_train_state(run / STATE_FILE)["data"] == {"epoch": 2, "batch_in_epoch": 2}
    trained = captured[0]
    assert set(tensors) == set(trained.trainable_state_dict())
    with pytest.warns(UserWarning, match="match the saved fingerprint"):
        model, cfg = load_run(run)
    assert not model.training and cfg.model.image_size == 64
    trained.eval()
    images = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        want, got = trained(images)[0], model(images)[0]
    for key in ("boxes", "scores", "embeddings"):
        assert torch.equal(want[key], got[key])


def test_kill_and_resume_is_exact(coco, tmp_path, monkeypatch) -> None:
    overrides = ("train.checkpoint_every=3", "train.log_every=1", "train.lr=0.001")

    def args(name: str, *resume: str) -> list[str]:
        return train_args(coco, tmp_path / name, "--max-steps", "6", *resume, overrides=overrides)

    assert main(args("straight")) == 0

    class Killed(Exception):
        pass

    save = trainer_module.save_checkpoint

    def save_then_die(*a, **k):
        save(*a, **k)
        raise Killed

    monkeypatch.setattr(trainer_module, "save_checkpoint", save_then_die)
    with pytest.raises(Killed):
        main(args("killed"))
    monkeypatch.setattr(trainer_module, "save_checkpoint", save)
    assert read_weights(tmp_path / "killed" / WEIGHTS_FILE)[1]["step"] == "3"
    state_file = tmp_path / "killed" / STATE_FILE
    state = load_train_state(state_file)
    assert state["train_s"] > 0
    save_train_state(state_file, {**state, "train_s": 1000.0})  # as if the first 3 steps had taken 1000 s
    with pytest.warns(UserWarning, match="no weight file"):
        assert main(args("killed", "--resume")) == 0
    assert load_train_state(state_file)["train_s"] > 1000.0  # the resumed run adds its time to the 1000 s

    straight, resumed = step_rows(tmp_path / "straight"), step_rows(tmp_path / "killed")
    assert [r["step"] for r in resumed] == list(range(1, 7))
    for key in ("total", "loss_cls", "loss_box", "loss_ctr", "loss_reid", "loss_reid_aux", "lr", "grad_norm"):
        assert [r[key] for r in resumed] == [r[key] for r in straight], key
    a, _ = read_weights(tmp_path / "straight" / WEIGHTS_FILE)
    b, _ = read_weights(tmp_path / "killed" / WEIGHTS_FILE)
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(coco, tmp_path, monkeypatch, capsys) -> None:
    build = trainer_module.build_seeded_model

    def build_diverging(cfg):
        model = build(cfg)
        forward = model.forward
        calls = []

        def nan_from_fifth_call(images, targets=None):
            losses = forward(images, targets)
            calls.append(1)
            if len(calls) >= 5:
                losses["loss_box"] = losses["loss_box"] * float("nan")
            return losses

        model.forward = nan_from_fifth_call
        return model

    monkeypatch.setattr(trainer_module, "build_seeded_model", build_diverging)
    run = tmp_path / "run"
    assert main(train_args(coco, run, "--max-steps", "8", overrides=("train.checkpoint_every=2",))) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "step 5: loss term loss_box is nan" in err and "last good checkpoint (step 4)" in err
    tensors, meta = read_weights(run / WEIGHTS_FILE)
    assert meta["step"] == "4" and all(torch.isfinite(t).all() for t in tensors.values() if t.is_floating_point())
    assert not (run / EFFICIENCY_FILE).exists()


def test_non_finite_weights_are_never_checkpointed(coco, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    overrides = ("train.checkpoint_every=1", "train.lr=1.0", "train.weight_decay=1.0e+39")  # decay -> inf weights
    args = train_args(coco, run, "--max-steps", "3", overrides=overrides)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "not finite" in err and "no checkpoint had been written yet" in err
    assert not (run / WEIGHTS_FILE).exists()


def test_bad_inputs_fail_before_training(coco, tmp_path, monkeypatch, capsys) -> None:
    def must_not_build(cfg):
        raise AssertionError("the model was built")

    monkeypatch.setattr(trainer_module, "build_seeded_model", must_not_build)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    cases = [
        (train_args(coco, blocker / "run", "--max-steps", "1"), "cannot create the output folder"),
        (train_args(coco, tmp_path / "r1", "--max-steps", "1", overrides=("train.no_such_key=1",)), "unknown key"),
        (train_args(coco, tmp_path / "r2", "--max-steps", "1", "--resume"), "no checkpoint"),
        (train_args((tmp_path / "missing.json", coco[1]), tmp_path / "r3"), "missing.json"),
    ]
    for args, message in cases:
        assert main(args) == 2, message
        err = capsys.readouterr().err.strip()
        assert err.startswith("effowt train: error:") and message in err and "\n" not in err
    assert not (tmp_path / "r3" / CONFIG_FILE).exists()  # nothing written for a run that never started


@pytest.mark.slow
def test_two_process_gloo_run_writes_one_checkpoint(coco, tmp_path) -> None:
    run = tmp_path / "run"
    ann_file, image_dir = coco
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "effowt",
           *train_args(coco, run, "--max-steps", "3", overrides=("train.log_every=1", "train.batch_size=1"))]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in run.iterdir()) == sorted(
        [CONFIG_FILE, WEIGHTS_FILE, STATE_FILE, METRICS_FILE, EFFICIENCY_FILE, LOSS_PLOT_FILE]
    )
    assert [r["step"] for r in step_rows(run)] == [1, 2, 3]  # rank 0 alone logs
    assert read_weights(run / WEIGHTS_FILE)[1]["step"] == "3"
    report = json.loads((run / EFFICIENCY_FILE).read_text())
    assert report["world_size"] == 2
    assert proc.stdout.count("efficiency [end]") + proc.stderr.count("efficiency [end]") == 1


def test_load_run_resolves_relative_backbone_weights_and_checks_identity(tmp_path, monkeypatch) -> None:
    run = tmp_path / "run"
    run.mkdir()
    cfg = load_config("mini", [*TINY, "model.backbone.weights=backbone.safetensors"])  # relative: beside config.yaml
    vit = timm.create_model(cfg.model.backbone.name.split(":")[1], pretrained=False, **cfg.model.backbone.model_kwargs)
    backbone_state = {k: v.contiguous() for k, v in vit.state_dict().items()}
    save_file(backbone_state, run / "backbone.safetensors")
    monkeypatch.chdir(run)
    model = build_seeded_model(cfg)
    save_run(run, model, cfg, step=5)
    monkeypatch.chdir(tmp_path)
    loaded, loaded_cfg = load_run(run)
    assert loaded_cfg.model.backbone.weights == str(run / "backbone.safetensors")
    assert loaded.backbone_identity() == model.backbone_identity()
    assert all(torch.equal(v, loaded.trainable_state_dict()[k]) for k, v in model.trainable_state_dict().items())

    save_file({k: v + 1 for k, v in backbone_state.items()}, run / "backbone.safetensors")
    with pytest.raises(WeightsError, match=r"last\.safetensors: trained with backbone weights sha256"):
        load_run(run)


def test_resume_keeps_the_runs_settings_unless_a_change_is_allowed(coco, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    assert main(train_args(coco, run, "--max-steps", "2")) == 0
    saved = (run / CONFIG_FILE).read_bytes()
    capsys.readouterr()
    for options, overrides, message in [
        (("--max-steps", "3", "--resume"), (), "train.max_steps 2 -> 3; pass --allow-config-change"),
        (("--resume",), ("train.lr=0.5",), "train.lr 0.0002 -> 0.5"),
        (("--resume", "--allow-config-change", "model.head.reid_dim"), ("model.head.reid_dim=16",),
         "cannot resume with different settings: model.head.reid_dim"),
    ]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert main(train_args(coco, run, *options, overrides=overrides)) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and message in err, err
        assert (run / CONFIG_FILE).read_bytes() == saved
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(train_args(coco, run, "--max-steps", "3", "--resume",
                               "--allow-config-change", "train.max_steps")) == 0
    events = [json.loads(line) for line in (run / METRICS_FILE).read_text().splitlines()]
    assert {"event": "config_change", "step": 2, "changes": {"train.max_steps": [2, 3]}} in events
    assert load_config(str(run / CONFIG_FILE)).train.max_steps == 3


def test_sigint_stops_with_one_line_and_resume_continues(coco, tmp_path, monkeypatch, capsys) -> None:
    overrides = ("train.checkpoint_every=2", "train.log_every=1")
    step = trainer_module.Trainer._train_step

    def interrupt_at_step_3(self, batches):
        if self.step == 3:
            os.kill(os.getpid(), signal.SIGINT)  # a real signal, handled by the CLI's handler
        return step(self, batches)

    monkeypatch.setattr(trainer_module.Trainer, "_train_step", interrupt_at_step_3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(train_args(coco, tmp_path / "run", "--max-steps", "5", overrides=overrides)) == 130
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("effowt train: interrupted by SIGINT: ")
        assert "checkpoint (step 2)" in err and "--resume" in err and "Traceback" not in err
        monkeypatch.setattr(trainer_module.Trainer, "_train_step", step)
        assert main(train_args(coco, tmp_path / "run", "--max-steps", "5", "--resume", overrides=overrides)) == 0
    assert [r["step"] for r in step_rows(tmp_path / "run")] == [1, 2, 3, 4, 5]
