"""The tiny VLM: pretraining on MiniOWT crops, and loading it through the backbone interface."""

import json

import pytest
import torch

from effowt.backbones import create_backbone
from effowt.cli import main
from effowt.config import BackboneConfig
from effowt.data.miniowt import generate_miniowt
from effowt.errors import ConfigError, DataError, WeightsError
from effowt.pretrain_config import LiTConfig, PretrainConfig
from effowt.vlm import VLM_WEIGHTS_FILE, load_object_crops


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    return generate_miniowt(root, seed=5, size=96, train_images=4, pretrain_images=12, val_videos=1, frames=2)


def test_crops_are_centred_windows_of_every_annotation(world):
    crops, labels, categories = load_object_crops(world.pretrain_json, world.pretrain_images, 64)
    anns = json.loads(world.pretrain_json.read_text())["annotations"]
    assert crops.shape == (len(anns), 3, 64, 64) and crops.dtype == torch.uint8
    ids = [c["id"] for c in categories]
    assert sorted(labels.tolist()) == sorted(ids.index(a["category_id"]) for a in anns)


def test_pretrain_writes_weights_that_load_as_a_backbone(world, tmp_path):
    out = tmp_path / "vlm"
    args = ["pretrain-vlm", "--data", str(world.root), "--out", str(out), "--steps", "2", "--batch-size", "8"]
    assert main(args) == 0
    report = json.loads((out / "pretrain.json").read_text())
    assert "all" in report["zero_shot_acc"] and set(report["zero_shot_acc"]) <= {"all", "known", "unknown"}
    assert 0.0 <= report["zero_shot_acc"]["all"] <= 1.0
    cfg = BackboneConfig(name="open_clip:EffOWT-Tiny", weights=str(out / VLM_WEIGHTS_FILE), taps=[1, 11])
    backbone = create_backbone(cfg)
    assert backbone.weights_sha256 is not None
    maps = backbone(torch.randn(1, 3, 128, 96))
    assert [tuple(m.shape) for m in maps] == [(1, 128, 16, 12)] * 2


def test_shipped_vlm_loads_and_a_wrong_depth_is_refused():
    shipped = BackboneConfig(name="open_clip:EffOWT-Tiny", weights="effowt:assets/tiny-vlm.safetensors", taps=[11])
    assert create_backbone(shipped).weights_sha256 is not None
    shallow = BackboneConfig(name="open_clip:EffOWT-Tiny", weights="effowt:assets/tiny-vlm.safetensors", taps=[1],
                             model_kwargs={"vision_cfg": {"layers": 6}})
    with pytest.raises(WeightsError, match="tiny-vlm.safetensors.*unexpected keys"):
        create_backbone(shallow)


def test_pretrain_on_a_folder_without_minowt_layout_is_a_clear_error(tmp_path, capsys):
    assert main(["pretrain-vlm", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--steps", "1"]) == 2
    assert "annotations.json" in capsys.readouterr().err
    with pytest.raises(DataError, match="not found"):
        load_object_crops(tmp_path / "missing.json", tmp_path, 64)


@pytest.mark.parametrize("config, field, value, message", [
    (PretrainConfig, "lr", float("nan"), "PretrainConfig.lr must be a finite number > 0, got nan"),
    (PretrainConfig, "steps", 2.5, "PretrainConfig.steps must be an integer > 0, got 2.5"),
    (PretrainConfig, "val_fraction", 1.0, "PretrainConfig.val_fraction must be a finite number in (0, 1), got 1.0"),
    (PretrainConfig, "seed", True, "PretrainConfig.seed must be an integer, got True"),
    (LiTConfig, "weight_decay", -0.1, "LiTConfig.weight_decay must be a finite number >= 0, got -0.1"),
    (LiTConfig, "lr", float("inf"), "LiTConfig.lr must be a finite number > 0, got inf"),
    (LiTConfig, "categories_per_step", 1, "LiTConfig.categories_per_step must be an integer >= 2, got 1"),
])
def test_pretraining_configs_are_checked_where_they_are_built(config, field, value, message):
    assert config(warmup_steps=0).warmup_steps == 0  # the defaults and a zero warm-up are valid
    with pytest.raises(ConfigError) as err:
        config(**{field: value})
    assert str(err.value) == message
