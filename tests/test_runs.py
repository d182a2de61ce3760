"""Run folders and `effowt.create_model`: one way to a model from a preset or a run."""

import warnings

import pytest
import torch

import effowt
from effowt.config import load_config
from effowt.errors import ConfigError
from effowt.models import EffOWT
from effowt.runs import build_seeded_model, create_model, save_run


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return fn(*args, **kwargs)


def test_package_exports_create_model():
    assert effowt.create_model is create_model


def test_create_model_from_the_shipped_runs():
    from effowt.backbones.weights import file_sha256, resolve_weights_path
    from effowt.runs import default_run_dir, shipped_run_dir

    model, cfg = create_model()  # the default: effowt-cutout on the LiT VLM, loaded strictly
    assert isinstance(model, EffOWT) and not model.training
    assert default_run_dir() == shipped_run_dir("effowt-cutout")
    assert cfg.model.backbone.name == "open_clip:EffOWT-LiT-MNV2" and cfg.model.image_size == 160
    lit = resolve_weights_path("effowt:assets/lit-mnv2.safetensors")
    assert cfg.model.backbone.weights == "effowt:assets/lit-mnv2.safetensors"
    assert model.backbone.weights_sha256 == file_sha256(lit)
    _, mini_cfg = create_model("effowt-mini")  # MiniOWT's model, by name
    assert mini_cfg.model.backbone.name == "open_clip:EffOWT-Tiny" and mini_cfg.model.image_size == 128


def test_create_model_from_a_preset_is_seeded():
    a, cfg = _quiet(create_model, "mini", overrides=["train.seed=3"])
    b, _ = _quiet(create_model, "mini", overrides=["train.seed=3"])
    assert cfg.train.seed == 3 and not a.training
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_create_model_from_a_run_folder_loads_its_weights(tmp_path):
    cfg = load_config("mini", ["train.seed=1"])
    trained = _quiet(build_seeded_model, cfg)
    with torch.no_grad():
        for p in trained.trainable_parameters():
            p.add_(0.5)
    run = save_run(tmp_path / "run", trained, cfg)
    model, loaded_cfg = _quiet(create_model, run, overrides=["tracker.max_dets=7"])
    assert loaded_cfg.tracker.max_dets == 7 and loaded_cfg.model == cfg.model
    want = trained.trainable_state_dict()
    got = model.trainable_state_dict()
    assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want)
    with pytest.raises(ConfigError, match="tracker.det_thresh"):
        create_model(run, overrides=["tracker.det_thresh=1.5"])
