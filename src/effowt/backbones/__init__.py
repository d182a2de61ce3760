"""Frozen vision-language backbones behind one small interface.

``create_backbone(cfg)`` looks up the library prefix of ``cfg.name``
(``timm:``, ``open_clip:``) in :data:`BACKBONE_REGISTRY` and builds the adapter.
Building downloads nothing but what ``cfg.weights`` names: a local file, or
weights on the Hugging Face Hub by name (``hf-hub:ORG/NAME[:FILE]``, an open_clip
pretrained tag; see :mod:`effowt.backbones.weights`); without weights the backbone is
random (with a loud warning).
"""

from __future__ import annotations

from collections.abc import Callable

from effowt.backbones.base import FrozenBackbone
from effowt.config import BackboneConfig
from effowt.errors import ConfigError

BackboneBuilder = Callable[[BackboneConfig, str], FrozenBackbone]

# library prefix -> builder(cfg, model name after the prefix)
BACKBONE_REGISTRY: dict[str, BackboneBuilder] = {}


def register_backbone(prefix: str) -> Callable[[BackboneBuilder], BackboneBuilder]:
    """Decorator making ``<prefix>:<model>`` names buildable by ``builder(cfg, model)``
    (how the ``timm`` and ``open_clip`` adapters below are registered)."""

    def register(builder: BackboneBuilder) -> BackboneBuilder:
        BACKBONE_REGISTRY[prefix] = builder
        return builder

    return register


@register_backbone("timm")
def _timm(cfg: BackboneConfig, model_name: str) -> FrozenBackbone:
    from effowt.backbones.timm_backbone import build_timm

    return build_timm(cfg, model_name)


@register_backbone("open_clip")
def _open_clip(cfg: BackboneConfig, model_name: str) -> FrozenBackbone:
    from effowt.backbones.open_clip_backbone import build_open_clip

    return build_open_clip(cfg, model_name)


def create_backbone(cfg: BackboneConfig) -> FrozenBackbone:
    """Build the frozen backbone named ``cfg.name`` (``"<library>:<model>"``), frozen and in eval mode
    (``cfg`` was checked when it was built: :class:`effowt.config.BackboneConfig`)."""
    prefix, sep, model_name = cfg.name.partition(":")
    if not sep or prefix not in BACKBONE_REGISTRY or not model_name:
        valid = ", ".join(f"{p}:<model>" for p in BACKBONE_REGISTRY)
        raise ConfigError(f"model.backbone.name: unknown backbone {cfg.name!r} (valid forms: {valid})")
    return BACKBONE_REGISTRY[prefix](cfg, model_name)


__all__ = ["BACKBONE_REGISTRY", "FrozenBackbone", "create_backbone", "register_backbone"]
