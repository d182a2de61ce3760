"""``build_model``: assemble EffOWT for one transfer mode.

| mode   | trainable                         | neck                  | backbone forward        |
|--------|-----------------------------------|-----------------------|-------------------------|
| side   | side network (+ fusion), heads    | ``SideNetwork``        | ``no_grad``, eval       |
| head   | pyramid, heads                    | ``model.pyramid``      | ``no_grad``, eval       |
| full   | everything                        | ``model.pyramid``      | with grad               |
| lora   | LoRA on the backbone, pyramid, heads | ``model.pyramid``   | with grad (through LoRA) |

``model.pyramid``: ``simple`` (:class:`SimpleFeaturePyramid`, ViTs), ``linear``
(:class:`~effowt.side.anchor.LinearPyramid`) or ``fpn`` (:class:`TapFeaturePyramid`, CNNs).
"""

from __future__ import annotations

from peft import LoraConfig as PeftLoraConfig
from peft import inject_adapter_in_model
from torch import nn

from effowt.backbones import FrozenBackbone, create_backbone
from effowt.config import ModelConfig
from effowt.errors import ConfigError
from effowt.heads import DetectionHead, ReIDHead
from effowt.models.effowt import EffOWT
from effowt.models.necks import SimpleFeaturePyramid, TapFeaturePyramid
from effowt.models.transform import ImageTransform
from effowt.side.anchor import LinearPyramid


def inject_lora(backbone: FrozenBackbone, rank: int, alpha: float, dropout: float, targets: list[str] | None) -> None:
    """Add peft LoRA adapters in place to ``backbone.model``; only they train."""
    target_modules = list(targets) if targets else backbone.lora_targets
    peft_cfg = PeftLoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=target_modules)
    try:
        inject_adapter_in_model(peft_cfg, backbone.model)
    except ValueError as err:
        raise ConfigError(f"model.lora.target_modules={target_modules} on {backbone.name}: {err}") from None
    backbone.requires_grad_(False)
    for name, param in backbone.named_parameters():
        if "lora_" in name:
            param.requires_grad_(True)
    backbone.frozen = False  # follow train()/eval(): LoRA dropout is active in training


def build_pyramid(kind: str, backbone: FrozenBackbone, channels: int, strides: list[int]) -> nn.Module:
    """The neck of the non-side modes (``kind`` checked by :class:`effowt.config.ModelConfig`):
    ``simple`` (:class:`SimpleFeaturePyramid`), ``linear`` (:class:`~effowt.side.anchor.LinearPyramid`),
    both on the last tap, or ``fpn`` (:class:`TapFeaturePyramid`, on every tap)."""
    if kind == "simple":
        return SimpleFeaturePyramid(backbone.embed_dim, backbone.patch_size, channels, strides)
    if kind == "fpn":
        return TapFeaturePyramid(backbone.tap_dims, backbone.tap_strides, channels, strides)
    return LinearPyramid(backbone.embed_dim, channels, strides)


def build_model(cfg: ModelConfig) -> EffOWT:
    """Build the input transform (longest side ``cfg.image_size``, the backbone's mean/std,
    padding to the largest head stride, at least 32), the backbone (weights from
    ``cfg.backbone.weights``), the neck of ``cfg.mode`` and the heads, and mark what trains
    (``cfg`` was checked when it was built). Never downloads."""
    backbone = create_backbone(cfg.backbone)
    if cfg.mode == "side":
        from effowt.side import SideNetwork, prune_init_

        neck_name = "side"
        neck = SideNetwork(cfg.side, backbone.embed_dim, len(backbone.taps), cfg.head.channels, list(cfg.head.strides),
                           tap_dims=backbone.tap_dims)
        if cfg.side.init == "prune":
            prune_init_(neck, backbone.block_weights, backbone.taps)
    else:
        neck_name = "pyramid"
        neck = build_pyramid(cfg.pyramid, backbone, cfg.head.channels, list(cfg.head.strides))
    if cfg.mode == "full":
        backbone.unfreeze()
    elif cfg.mode == "lora":
        inject_lora(backbone, cfg.lora.rank, cfg.lora.alpha, cfg.lora.dropout, cfg.lora.target_modules)
    return EffOWT(
        mode=cfg.mode,
        backbone=backbone,
        neck_name=neck_name,
        neck=neck,
        detector=DetectionHead(cfg.head),
        reid=ReIDHead(cfg.head),
        reid_temperature=cfg.head.reid_temperature,
        transform=ImageTransform(cfg.image_size, backbone.mean, backbone.std, max(32, max(cfg.head.strides))),
    )
