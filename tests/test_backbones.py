"""Backbone adapters: building, dynamic sizes, freezing, block weights, local weight files."""

from __future__ import annotations

import json

import open_clip
import pytest
import timm
import torch
from safetensors.torch import save_file

from effowt.backbones import create_backbone
from effowt.backbones.open_clip_backbone import register_open_clip_configs
from effowt.backbones.weights import random_init_expected
from effowt.config import BackboneConfig
from effowt.errors import ConfigError, WeightsError

VIT_KWARGS = {"embed_dim": 64, "depth": 3, "num_heads": 2}
EVA_KWARGS = {"embed_dim": 64, "depth": 2, "num_heads": 2}
TINY_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
    "text_cfg": {"context_length": 8, "vocab_size": 100, "width": 32, "heads": 2, "layers": 1},
}


def _build(cfg: BackboneConfig):
    with random_init_expected():
        return create_backbone(cfg)


def _vit_cfg(**kw) -> BackboneConfig:
    kw.setdefault("taps", [0, 2])
    return BackboneConfig(name="timm:vit_tiny_patch16_224", model_kwargs=dict(VIT_KWARGS), **kw)


@pytest.fixture
def tiny_clip_name(tmp_path) -> str:
    """A tiny open_clip model config registered from a temporary folder."""
    name = "EffOWTTest-Tiny"
    (tmp_path / f"{name}.json").write_text(json.dumps(TINY_CLIP))
    register_open_clip_configs(tmp_path)
    return name


@pytest.mark.parametrize(
    "cfg, dim, patch",
    [
        (_vit_cfg(), 64, 16),
        (BackboneConfig(name="timm:eva02_tiny_patch14_224", taps=[0, 1], model_kwargs={"depth": 2}), 192, 14),
        (BackboneConfig(name="open_clip:EVA02-L-14", taps=[0, 1], model_kwargs={"timm_kwargs": EVA_KWARGS}), 64, 14),
        (BackboneConfig(name="open_clip:EffOWT-Tiny", taps=[1, 3], model_kwargs={"vision_cfg": {"layers": 4}}), 128, 8),
    ],
    ids=["timm-vit", "timm-eva02", "open_clip-eva02", "open_clip-effowt-tiny"],
)
def test_backbone_taps_any_size_frozen(cfg: BackboneConfig, dim: int, patch: int) -> None:
    backbone = _build(cfg)
    assert (backbone.embed_dim, backbone.patch_size) == (dim, patch)
    x = torch.randn(2, 3, 50, 70)  # not a patch multiple: padded inside
    out = backbone(x)
    grid = (-(-50 // patch), -(-70 // patch))
    assert [tuple(o.shape) for o in out] == [(2, dim, *grid)] * len(cfg.taps)
    assert all(o.dtype == torch.float32 and torch.isfinite(o).all() for o in out)
    backbone.train()
    assert not backbone.training and not any(m.training for m in backbone.modules())
    assert not any(p.requires_grad for p in backbone.parameters())
    weights = backbone.block_weights(cfg.taps[-1])
    assert set(weights) == {"q", "k", "v", "proj", "fc1", "fc2", "norm1", "norm2"}
    hidden = weights["fc1"].shape[0]
    assert all(weights[k].shape == (dim, dim) for k in ("q", "k", "v", "proj"))
    assert weights["fc2"].shape == (dim, hidden) and weights["fc1"].shape == (hidden, dim)
    assert weights["norm1"].shape == (dim,) and weights["norm2"].shape == (dim,)


def test_eva_swiglu_block_weights_give_value_branch() -> None:
    backbone = _build(BackboneConfig(name="timm:eva02_large_patch14_clip_224", taps=[0], model_kwargs=dict(EVA_KWARGS)))
    mlp = backbone.model.blocks[0].mlp
    assert torch.equal(backbone.block_weights(0)["fc1"], mlp.fc1_x.weight)
    assert backbone.lora_targets == ["attn.q_proj", "attn.k_proj", "attn.v_proj", "attn.proj"]


def test_open_clip_custom_config_from_folder(tiny_clip_name: str) -> None:
    backbone = _build(BackboneConfig(name=f"open_clip:{tiny_clip_name}", taps=[0, 1]))
    assert (backbone.embed_dim, backbone.patch_size, backbone.depth) == (64, 8, 2)
    assert [tuple(o.shape) for o in backbone(torch.randn(1, 3, 48, 40))] == [(1, 64, 6, 5)] * 2


def test_open_clip_full_checkpoint_loads_and_matches_reference(tiny_clip_name: str, tmp_path) -> None:
    clip = open_clip.create_model(tiny_clip_name, pretrained=None).eval()
    path = tmp_path / "clip.pt"
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in clip.state_dict().items()}}, path)
    backbone = create_backbone(BackboneConfig(name=f"open_clip:{tiny_clip_name}", taps=[0, 1], weights=str(path)))
    x = torch.randn(1, 3, 32, 32)  # the config's native size: reference path needs no resampling
    with torch.no_grad():
        expected = clip.visual.forward_intermediates(x, indices=[0, 1], intermediates_only=True)["image_intermediates"]
        got = backbone(x)
    for e, g in zip(expected, got):
        torch.testing.assert_close(g, e)
    assert len(backbone.identity()["weights_sha256"]) == 64


def test_timm_safetensors_weights_load_exactly(tmp_path) -> None:
    reference = timm.create_model(
        "vit_tiny_patch16_224", pretrained=False, num_classes=10, dynamic_img_size=True, **VIT_KWARGS
    ).eval()
    path = tmp_path / "vit.safetensors"
    save_file(reference.state_dict(), str(path))  # with a classifier head: ignored
    loaded = create_backbone(_vit_cfg(weights=str(path)))
    random = _build(_vit_cfg())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = reference.forward_intermediates(x, indices=[0, 2], intermediates_only=True)
        got = loaded(x)
        other = random(x)
    torch.testing.assert_close(got[-1], expected[-1])
    assert not torch.allclose(got[-1], other[-1])
    assert loaded.identity() == {"name": "timm:vit_tiny_patch16_224", "weights_sha256": loaded.weights_sha256}


def test_open_clip_eva_trunk_keys_load(tmp_path) -> None:
    trunk = timm.create_model("eva02_large_patch14_clip_224", pretrained=False, num_classes=0, **EVA_KWARGS)
    state = {f"visual.trunk.{k}": v for k, v in trunk.state_dict().items()}
    state["visual.head.proj.weight"] = torch.zeros(32, 64)
    state["text.token_embedding.weight"] = torch.zeros(10, 32)
    path = tmp_path / "eva_clip.safetensors"
    save_file(state, str(path))
    cfg = BackboneConfig(name="open_clip:EVA02-L-14", taps=[1], model_kwargs={"timm_kwargs": EVA_KWARGS},
                         weights=str(path))
    backbone = create_backbone(cfg)
    torch.testing.assert_close(backbone.model.blocks[1].attn.q_proj.weight, trunk.blocks[1].attn.q_proj.weight)


def test_wrong_shape_weights_name_file_and_key(tmp_path) -> None:
    state = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, **VIT_KWARGS).state_dict()
    state["blocks.1.mlp.fc1.weight"] = torch.zeros(7, 64)
    path = tmp_path / "bad.safetensors"
    save_file(state, str(path))
    with pytest.raises(WeightsError, match=r"bad\.safetensors.*blocks\.1\.mlp\.fc1\.weight.*\(7, 64\)"):
        create_backbone(_vit_cfg(weights=str(path)))


def test_missing_and_unexpected_keys_are_listed(tmp_path) -> None:
    state = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, **VIT_KWARGS).state_dict()
    del state["blocks.0.attn.qkv.weight"]
    state["extra.weight"] = torch.zeros(3)
    path = tmp_path / "partial.pt"
    torch.save(state, path)
    expected = r"partial\.pt.*missing keys: blocks\.0\.attn\.qkv\.weight.*unexpected keys: extra\.weight"
    with pytest.raises(WeightsError, match=expected):
        create_backbone(_vit_cfg(weights=str(path)))


def test_missing_weight_file(tmp_path) -> None:
    with pytest.raises(WeightsError, match="nope.safetensors.*not found"):
        create_backbone(_vit_cfg(weights=str(tmp_path / "nope.safetensors")))


def test_random_init_warns() -> None:
    with pytest.warns(UserWarning, match="random-initialised backbone.*--backbone-weights"):
        create_backbone(_vit_cfg())


@pytest.mark.parametrize(
    "cfg, pattern",
    [
        (BackboneConfig(name="keras:resnet"), r"unknown backbone 'keras:resnet'.*timm:<model>.*open_clip:<model>"),
        (BackboneConfig(name="vit_tiny_patch16_224"), "unknown backbone"),
        (BackboneConfig(name="timm:no_such_model_xyz"), "no_such_model_xyz"),
        (BackboneConfig(name="open_clip:No-Such-Model"), "unknown open_clip model config"),
        (_vit_cfg(taps=[0, 5]), r"taps: \[5\] out of range"),
        (_vit_cfg(dtype="float8"), "unknown dtype"),
    ],
)
def test_bad_backbone_config(cfg: BackboneConfig, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        _build(cfg)


def test_bfloat16_backbone_returns_float32() -> None:
    backbone = _build(_vit_cfg(dtype="bfloat16"))
    assert next(backbone.parameters()).dtype == torch.bfloat16
    assert all(o.dtype == torch.float32 for o in backbone(torch.randn(1, 3, 32, 32)))
