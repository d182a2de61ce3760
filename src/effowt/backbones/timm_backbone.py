"""timm vision transformers (ViT, CLIP ViT, EVA-02) as frozen backbones: ``timm:<name>``."""

from __future__ import annotations

import sys

import timm
import torch
from timm.layers import GluMlp
from torch import nn

from effowt.backbones.base import FrozenBackbone, parse_dtype, standard_block_weights
from effowt.backbones.weights import load_weights_into, warn_random_init
from effowt.config import BackboneConfig
from effowt.errors import ConfigError

IMAGENET_INCEPTION = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


def create_timm_vit(model_name: str, model_kwargs: dict, source: str) -> nn.Module:
    """``timm.create_model(name, pretrained=False, num_classes=0, dynamic_img_size=True)``,
    checked to be a ViT-style model with blocks and ``forward_intermediates``."""
    try:
        model = timm.create_model(
            model_name, pretrained=False, num_classes=0, dynamic_img_size=True, **model_kwargs
        )
    except (RuntimeError, TypeError, ValueError) as err:
        raise ConfigError(f"{source}: cannot build timm model {model_name!r}: {err}") from None
    if not (hasattr(model, "blocks") and hasattr(model, "forward_intermediates") and hasattr(model, "embed_dim")):
        raise ConfigError(f"{source}: timm model {model_name!r} is not a ViT-style model with blocks")
    return model


class TimmBackbone(FrozenBackbone):
    """A timm ViT / EVA built with ``dynamic_img_size=True`` (any input size).

    Weights are loaded into the timm model (through the model's own
    ``checkpoint_filter_fn``, which also converts open_clip layouts and resamples
    position embeddings), then blocks after the last tap, the final norm and the
    head are pruned: they never influence the tapped outputs.
    """

    weight_prefixes: tuple[str, ...] = ("visual.trunk.", "trunk.")

    def __init__(
        self,
        cfg: BackboneConfig,
        model: nn.Module,
        mean: tuple[float, float, float] | None = None,
        std: tuple[float, float, float] | None = None,
    ) -> None:
        pretrained_cfg = getattr(model, "pretrained_cfg", {}) or {}
        attn = model.blocks[0].attn
        fused = getattr(attn, "qkv", None) is not None
        super().__init__(
            name=cfg.name,
            embed_dim=model.embed_dim,
            patch_size=model.patch_embed.patch_size[0],
            depth=len(model.blocks),
            taps=cfg.taps,
            mean=mean or tuple(pretrained_cfg.get("mean", IMAGENET_INCEPTION[0])),
            std=std or tuple(pretrained_cfg.get("std", IMAGENET_INCEPTION[1])),
            lora_targets=[f"attn.{n}" for n in (("qkv", "proj") if fused else ("q_proj", "k_proj", "v_proj", "proj"))],
            dtype=parse_dtype(cfg.dtype),
        )
        self.model = model
        if cfg.weights:
            filter_fn = getattr(sys.modules[type(model).__module__], "checkpoint_filter_fn", None)
            own = set(model.state_dict())

            def convert(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
                return _drop_head(filter_fn(state, model) if filter_fn else state, own)

            self.weights_sha256 = load_weights_into(model, cfg.weights, prefixes=self.weight_prefixes,
                                                    convert=convert, backbone=cfg.name)
        else:
            warn_random_init(cfg.name)
        model.prune_intermediate_layers(indices=self.taps, prune_norm=True, prune_head=True)
        model.to(self.dtype)
        self.freeze()

    def _forward_taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.model.forward_intermediates(x, indices=self.taps, intermediates_only=True)

    def block_weights(self, i: int) -> dict[str, torch.Tensor]:
        """See :meth:`FrozenBackbone.block_weights`; fused ``qkv`` is split in three,
        EVA-02's SwiGLU gives ``fc1_x``, a fused GLU ``fc1`` gives its value half."""
        self._check_block(i, len(self.model.blocks))
        blk = self.model.blocks[i]
        attn, mlp = blk.attn, blk.mlp
        if getattr(attn, "qkv", None) is not None:
            q, k, v = attn.qkv.weight.chunk(3, dim=0)
        else:
            q, k, v = attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight
        if hasattr(mlp, "fc1_x"):
            fc1 = mlp.fc1_x.weight
        elif isinstance(mlp, GluMlp):
            value, gate = mlp.fc1.weight.chunk(2, dim=0)
            fc1 = value if mlp.gate_last else gate
        else:
            fc1 = mlp.fc1.weight
        return standard_block_weights(
            q, k, v, attn.proj.weight, fc1, mlp.fc2.weight, _norm_scale(blk.norm1, self.embed_dim),
            _norm_scale(blk.norm2, self.embed_dim),
        )


def _drop_head(state: dict[str, torch.Tensor], own: set[str]) -> dict[str, torch.Tensor]:
    """Drop classifier / projection ``head.*`` keys: the backbone is built without a head."""
    return {k: v for k, v in state.items() if not (k.startswith("head.") and k not in own)}


def _norm_scale(norm: nn.Module, dim: int) -> torch.Tensor:
    weight = getattr(norm, "weight", None)
    return weight if weight is not None else torch.ones(dim)


def build_timm(cfg: BackboneConfig, model_name: str) -> TimmBackbone:
    """``timm:<name>`` -> :class:`TimmBackbone` (``cfg.model_kwargs`` go to timm)."""
    return TimmBackbone(cfg, create_timm_vit(model_name, dict(cfg.model_kwargs), f"model.backbone.name={cfg.name}"))
