"""EffOWT assembly: every transfer mode trains and detects; gradients go where they should."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from effowt.backbones.weights import random_init_expected
from effowt.config import BackboneConfig, ModelConfig, load_config
from effowt.errors import ConfigError, WeightsError
from effowt.models import EffOWT, ImageTransform, build_model

MODES = ["side", "head", "full", "lora"]


def _cfg(mode: str, **changes) -> ModelConfig:
    cfg = load_config("mini").model
    return dataclasses.replace(cfg, mode=mode, **changes)


def _build(cfg: ModelConfig) -> EffOWT:
    with random_init_expected():
        return build_model(cfg)


def _batch() -> tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
    """Two images = two views of one picture (instance ids 7, 8 shared) at 64 px."""
    images = torch.rand(2, 3, 64, 64)
    targets = [
        {"boxes": torch.tensor([[4.0, 4.0, 30.0, 40.0], [32.0, 10.0, 60.0, 60.0]]),
         "instance_ids": torch.tensor([7, 8])},
        {"boxes": torch.tensor([[6.0, 2.0, 34.0, 38.0], [30.0, 12.0, 58.0, 62.0]]),
         "instance_ids": torch.tensor([7, 8])},
    ]
    return images, targets


def _is_lora(name: str) -> bool:
    return "lora_" in name


@pytest.mark.parametrize("mode", MODES)
def test_mode_trains_and_detects(mode: str) -> None:
    model = _build(_cfg(mode))
    images, targets = _batch()
    before = images.clone()
    model.train()
    losses = model(images, targets)
    assert set(losses) == {"loss_cls", "loss_box", "loss_ctr", "loss_reid", "loss_reid_aux"}
    assert all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())
    assert torch.equal(images, before)
    sum(losses.values()).backward()

    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and {id(p) for p in model.trainable_parameters()} == {
        id(p) for n, p in model.named_parameters() if n in trainable
    }
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert no_grad == []
    backbone_grads = {n for n, p in model.backbone.named_parameters() if p.grad is not None}
    if mode in ("side", "head"):
        assert backbone_grads == set()
        assert not model.backbone.training
    elif mode == "lora":
        assert backbone_grads and all(_is_lora(n) for n in backbone_grads)
    else:
        assert backbone_grads == {n for n, _ in model.backbone.named_parameters()}

    model.eval()
    with torch.no_grad():
        dets = model(torch.rand(2, 3, 50, 70))  # not a multiple of 32: padded inside
    assert len(dets) == 2
    for det in dets:
        n = len(det["boxes"])
        assert det["boxes"].shape == (n, 4) and det["scores"].shape == (n,) and det["embeddings"].shape == (n, 32)
        assert n > 0
        assert (det["boxes"][:, 2] <= 70).all() and (det["boxes"][:, 3] <= 50).all()
        torch.testing.assert_close(det["embeddings"].norm(dim=1), torch.ones(n))


def test_forward_composes_transform_features_heads_and_postprocess() -> None:
    """Two paths that must agree: the forward on an image of another size than the model's
    128 px, and its parts called by hand; ``embed`` of the detected boxes gives their embeddings."""
    model = _build(_cfg("head")).eval()
    images = torch.rand(1, 3, 100, 150)
    with torch.no_grad():
        direct = model(images)[0]
        x, sizes, _ = model.transform(images)
        staged = model.transform.postprocess(model.heads(model.features(x), sizes), [(100, 150)])[0]
        embedded = model.embed(images, [direct["boxes"]])[0]
    assert sizes == [(85, 128)] and x.shape == (1, 3, 96, 128)
    for key in ("boxes", "scores", "embeddings"):
        torch.testing.assert_close(direct[key], staged[key])
    assert len(direct["boxes"]) > 0 and (direct["boxes"][:, 2] <= 150).all() and (direct["boxes"][:, 3] <= 100).all()
    torch.testing.assert_close(embedded, direct["embeddings"], atol=1e-4, rtol=0)


def test_transform_resizes_to_the_longest_side_and_maps_boxes_back() -> None:
    transform = ImageTransform(64, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), pad_multiple=32)
    frame_box = torch.tensor([[25.0, 12.5, 75.0, 62.5]])
    x, sizes, targets = transform(torch.rand(2, 3, 100, 200), [{"boxes": frame_box, "instance_ids": torch.ones(1)}] * 2)
    assert x.shape == (2, 3, 32, 64) and sizes == [(32, 64)] * 2  # longest side 64, aspect kept
    torch.testing.assert_close(targets[1]["boxes"], torch.tensor([[8.0, 4.0, 24.0, 20.0]]))
    assert targets[1]["instance_ids"].tolist() == [1.0]
    scores = torch.tensor([0.9])
    back = transform.postprocess([{"boxes": torch.tensor([[8.0, 4.0, 24.0, 20.0]]), "scores": scores}], [(100, 200)])
    torch.testing.assert_close(back[0]["boxes"], frame_box)
    assert back[0]["scores"] is scores


def test_transform_normalises_pads_clips_and_leaves_a_matching_size_alone() -> None:
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.5)
    transform = ImageTransform(70, mean, std, pad_multiple=32)
    images = torch.rand(1, 3, 50, 70)
    boxes = torch.tensor([[1.0, 2.0, 30.0, 40.0]])
    x, sizes, targets = transform(images, [{"boxes": boxes}])
    assert x.shape == (1, 3, 64, 96) and sizes == [(50, 70)] and targets[0]["boxes"] is boxes  # no resize
    want = (images - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    torch.testing.assert_close(x[..., :50, :70], want)
    assert x[..., 50:, :].abs().sum() == 0 and x[..., 70:].abs().sum() == 0  # zero padding bottom / right
    clipped = transform.postprocess([{"boxes": torch.tensor([[-5.0, -5.0, 70.0, 40.0]])}], [(32, 64)])
    torch.testing.assert_close(clipped[0]["boxes"], torch.tensor([[0.0, 0.0, 64.0, 32.0]]))


def test_side_mode_backbone_runs_without_grad_and_keeps_the_result() -> None:
    """notes section 2 "Keep the saving": no_grad backbone == grad-enabled backbone."""
    model = _build(_cfg("side"))
    model.train()
    images, targets = _batch()
    seen: list[bool] = []
    model.backbone.model.blocks[0].register_forward_hook(lambda *_: seen.append(torch.is_grad_enabled()))

    def run() -> tuple[torch.Tensor, list[torch.Tensor]]:
        model.zero_grad(set_to_none=True)
        loss = sum(model(images, targets).values())
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in model.trainable_parameters()]

    loss_nograd, grads_nograd = run()
    model.backbone_grad = True
    loss_grad, grads_grad = run()
    assert seen == [False, True]
    torch.testing.assert_close(loss_nograd, loss_grad)
    for a, b in zip(grads_nograd, grads_grad):
        torch.testing.assert_close(a, b)
    assert all(p.grad is None for p in model.backbone.parameters())


def test_untrained_residual_side_model_equals_head_only_with_linear_pyramid() -> None:
    torch.manual_seed(0)
    side = _build(_cfg("side", side=dataclasses.replace(load_config("mini").model.side, output="residual")))
    head = _build(_cfg("head", pyramid="linear"))
    state = head.state_dict()
    state.update({f"pyramid.{k}": v for k, v in side.side.output.base.state_dict().items()})
    state.update({k: v for k, v in side.state_dict().items() if k.startswith(("detector.", "reid."))})
    head.load_state_dict(state)
    side.backbone.load_state_dict(head.backbone.state_dict())
    side.eval(), head.eval()
    images = torch.rand(2, 3, 64, 64)
    x, _, _ = side.transform(images)
    side_pyramid = side.features(x)
    head_pyramid = head.features(x)
    assert list(side_pyramid) == list(head_pyramid)
    assert all(torch.equal(side_pyramid[k], head_pyramid[k]) for k in side_pyramid)
    for a, b in zip(side(images), head(images)):
        assert torch.equal(a["boxes"], b["boxes"]) and torch.equal(a["embeddings"], b["embeddings"])


def test_side_prune_init_copies_backbone_weights() -> None:
    """Same seed with and without pruning: only the side blocks' weights may differ, and they must."""

    def build(init: str) -> EffOWT:
        torch.manual_seed(0)
        return _build(dataclasses.replace(_cfg("side"), side=dataclasses.replace(_cfg("side").side, init=init)))

    pruned, random = build("prune"), build("random")
    unpruned = dict(random.named_parameters())
    changed = {name for name, p in pruned.named_parameters() if not torch.equal(p, unpruned[name])}
    assert changed and all(name.startswith("side.") and ".blocks." in name for name in changed)


@pytest.mark.parametrize(
    "backbone",
    [
        BackboneConfig(name="timm:eva02_tiny_patch14_224", taps=[0, 1], model_kwargs={"depth": 2}),
        BackboneConfig(name="open_clip:EffOWT-Tiny", taps=[0, 1], model_kwargs={"vision_cfg": {"layers": 2}}),
    ],
    ids=["patch14", "patch8"],
)
def test_simple_pyramid_any_patch_size(backbone: BackboneConfig) -> None:
    model = _build(_cfg("head", backbone=backbone, image_size=90))
    x, _, _ = model.transform(torch.rand(1, 3, 60, 90))
    pyramid = model.features(x)
    assert {k: tuple(v.shape) for k, v in pyramid.items()} == {
        "p8": (1, 32, 8, 12), "p16": (1, 32, 4, 6), "p32": (1, 32, 2, 3)
    }


@pytest.mark.parametrize(
    "images",
    [torch.rand(3, 64, 64), torch.rand(1, 1, 64, 64), torch.zeros(1, 3, 64, 64, dtype=torch.uint8)],
    ids=["3d", "one-channel", "uint8"],
)
def test_wrong_image_tensor_is_a_clear_error(images: torch.Tensor) -> None:
    model = _build(_cfg("head")).eval()
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\].*got .*" + r"\(" + ", ".join(map(str, images.shape))):
        model(images)


def test_training_needs_targets() -> None:
    model = _build(_cfg("head")).train()
    with pytest.raises(ValueError, match="one target dict per image"):
        model(torch.rand(2, 3, 64, 64))


def test_bad_pyramid_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="model.pyramid"):
        _build(_cfg("head", pyramid="ladder"))


def test_unknown_mode_and_bad_heads_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown transfer mode 'adapter'.*side, head, full, lora"):
        build_model(_cfg("adapter"))
    with pytest.raises(ConfigError, match="multiple of 32"):
        build_model(_cfg("head", head=dataclasses.replace(_cfg("head").head, channels=48)))
    lora = dataclasses.replace(_cfg("lora").lora, target_modules=["no_such_layer"])
    with pytest.raises(ConfigError, match="no_such_layer"):
        _build(_cfg("lora", lora=lora))


@pytest.mark.parametrize("mode", ["side", "lora"])
def test_trainable_state_dict_round_trip_and_strict_load(mode: str) -> None:
    source = _build(_cfg(mode))
    state = source.trainable_state_dict()
    frozen = {f"backbone.{n}" for n, p in source.backbone.named_parameters() if not p.requires_grad}
    assert state and not frozen & set(state)
    assert all(k in state for k, p in source.named_parameters() if p.requires_grad)
    torch.manual_seed(1)
    target = _build(_cfg(mode))
    target.load_trainable_state_dict(state)
    images = torch.rand(1, 3, 64, 64)
    source.eval(), target.eval()
    with torch.no_grad():
        source_taps = source.backbone(source.transform(images)[0])
        target_taps = target.backbone(target.transform(images)[0])
    for name, value in state.items():
        torch.testing.assert_close(target.state_dict()[name], value)
    assert not torch.allclose(source_taps[-1], target_taps[-1])  # frozen backbone is not in the checkpoint

    key = next(iter(state))
    with pytest.raises(WeightsError, match="missing keys: " + key.replace(".", r"\.")):
        target.load_trainable_state_dict({k: v for k, v in state.items() if k != key})
    with pytest.raises(WeightsError, match=r"unexpected keys: extra\.w"):
        target.load_trainable_state_dict({**state, "extra.w": torch.zeros(1)})
    with pytest.raises(WeightsError, match=r"shape mismatch: .*\(checkpoint \(3,\) vs model"):
        target.load_trainable_state_dict({**state, key: torch.zeros(3)})


def test_backbone_identity() -> None:
    assert _build(_cfg("head")).backbone_identity() == {"name": "timm:vit_tiny_patch16_224", "weights_sha256": None}
