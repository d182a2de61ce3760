"""open_clip vision towers as frozen backbones: ``open_clip:<model config>``.

Model configs come from open_clip's registry plus the folder
``effowt/configs/open_clip/`` shipped with effowt (our tiny VLM,
``EffOWT-Tiny``); :func:`register_open_clip_configs` adds more folders or files.

``cfg.model_kwargs`` is deep-merged into the open_clip model config (e.g.
``{"vision_cfg": {"layers": 2}}``), except the key ``timm_kwargs``, which goes to
``timm.create_model`` for configs whose vision tower is a timm model.

Two kinds of vision tower:

- native open_clip ``VisionTransformer`` (``ViT-B-16``): built with
  ``open_clip.create_model(name, pretrained=None)``; only ``model.visual`` is kept.
  Its position embedding is resampled to the input's token grid, so any input
  size works.
- a timm CNN trunk (``EffOWT-LiT-MNV2``, MobileNetV2): :mod:`effowt.backbones.cnn`.
- a timm ViT trunk (``EVA02-L-14``: ``vision_cfg.timm_model_name``): the trunk is built
  directly with timm (``dynamic_img_size=True``; the text tower and projection
  are not built) and weights are read from ``visual.trunk.*`` keys.
"""

from __future__ import annotations

import copy
import logging
from importlib import resources
from pathlib import Path
from typing import Any

import open_clip
import torch
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from open_clip.transformer import ResidualAttentionBlock, VisionTransformer
from timm.layers import resample_abs_pos_embed
from torch import nn

from effowt.backbones.base import FrozenBackbone, parse_dtype, standard_block_weights
from effowt.backbones.cnn import CNN_TRUNKS, CnnBackbone, create_timm_cnn
from effowt.backbones.timm_backbone import TimmBackbone, create_timm_vit
from effowt.backbones.weights import load_weights_into, warn_random_init
from effowt.config import BackboneConfig
from effowt.errors import ConfigError

_registered: set[Path] = set()
# config name -> its "preprocess_cfg" (mean / std of a tower not trained with OpenAI's):
# open_clip's model classes take no such key, so it is kept here instead of in the registry
_PREPROCESS_CFGS: dict[str, dict[str, Any]] = {}


def register_open_clip_configs(path: str | Path) -> None:
    """Add a folder of open_clip model-config JSON files (or one file) to open_clip's registry."""
    path = Path(path).resolve()
    if path not in _registered:
        open_clip.add_model_config(path)
        _registered.add(path)
        # add_model_config re-reads every registered folder, so the keys popped from the
        # configs of earlier ones are back: pop them from all of ours again
        registry = open_clip.factory._MODEL_CONFIGS  # get_model_config returns copies
        for folder in sorted(_registered):
            for file in [folder] if folder.is_file() else sorted(folder.glob("*.json")):
                if "preprocess_cfg" in registry.get(file.stem, {}):
                    _PREPROCESS_CFGS[file.stem] = registry[file.stem].pop("preprocess_cfg")


def register_package_configs() -> None:
    """Register effowt's own open_clip model configs (``effowt/configs/open_clip``)."""
    folder = resources.files("effowt") / "configs" / "open_clip"
    if folder.is_dir():
        register_open_clip_configs(Path(str(folder)))


def _drop_no_weights_notice(record: logging.LogRecord) -> bool:
    return "No pretrained weights loaded" not in record.getMessage()


def create_open_clip_model(name: str, **kwargs: Any) -> nn.Module:
    """``open_clip.create_model(name, pretrained=None, **kwargs)``, never downloading.

    open_clip logs "No pretrained weights loaded" on the root logger for every
    build without ``pretrained``; effowt loads weights itself (and warns loudly
    when there are none), so that notice is filtered out here.
    """
    register_package_configs()
    root = logging.getLogger()
    root.addFilter(_drop_no_weights_notice)
    try:
        return open_clip.create_model(name, pretrained=None, force_preprocess_cfg=_PREPROCESS_CFGS.get(name),
                                      **kwargs)
    finally:
        root.removeFilter(_drop_no_weights_notice)


def _deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _mean_std(model_name: str, model_cfg: dict[str, Any]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    pre = _PREPROCESS_CFGS.get(model_name, model_cfg.get("preprocess_cfg", {}))
    return tuple(pre.get("mean", OPENAI_DATASET_MEAN)), tuple(pre.get("std", OPENAI_DATASET_STD))


class OpenClipTimmBackbone(TimmBackbone):
    """An open_clip model whose vision tower is a timm trunk (EVA-02 CLIP)."""

    weight_prefixes = ("visual.trunk.", "trunk.")


class OpenClipBackbone(FrozenBackbone):
    """open_clip's native ``VisionTransformer`` (``model.visual``), any input size."""

    def __init__(self, cfg: BackboneConfig, visual: VisionTransformer, mean: tuple, std: tuple) -> None:
        blocks = visual.transformer.resblocks
        if not all(isinstance(b, ResidualAttentionBlock) for b in blocks):
            raise ConfigError(
                f"model.backbone.name={cfg.name}: only standard open_clip ResidualAttentionBlocks are supported"
            )
        super().__init__(
            name=cfg.name,
            embed_dim=visual.transformer.width,
            patch_size=visual.patch_size[0],
            depth=len(blocks),
            taps=cfg.taps,
            mean=mean,
            std=std,
            lora_targets=["attn"],
            dtype=parse_dtype(cfg.dtype),
        )
        self.model = visual
        if cfg.weights:
            self.weights_sha256 = load_weights_into(visual, cfg.weights, prefixes=("visual.",), backbone=cfg.name)
        else:
            warn_random_init(cfg.name)
        visual.prune_intermediate_layers(indices=self.taps, prune_norm=True, prune_head=True)
        visual.to(self.dtype)
        self.freeze()

    def _forward_taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        visual = self.model
        b, _, h, w = x.shape
        gh, gw = h // self.patch_size, w // self.patch_size
        tokens = visual.conv1(x).flatten(2).transpose(1, 2)  # [B, gh*gw, D]
        cls = visual.class_embedding.view(1, 1, -1).expand(b, -1, -1).to(tokens.dtype)
        tokens = torch.cat([cls, tokens], dim=1)
        pos = resample_abs_pos_embed(
            visual.positional_embedding.unsqueeze(0), new_size=(gh, gw), old_size=visual.grid_size, num_prefix_tokens=1
        )
        tokens = visual.ln_pre(visual.patch_dropout(tokens + pos.to(tokens.dtype)))
        _, inter = visual.transformer.forward_intermediates(tokens, indices=self.taps)
        return [t[:, 1:].reshape(b, gh, gw, -1).permute(0, 3, 1, 2).contiguous() for t in inter]

    def block_weights(self, i: int) -> dict[str, torch.Tensor]:
        """See :meth:`FrozenBackbone.block_weights`; ``in_proj_weight`` is split in q, k, v."""
        blocks = self.model.transformer.resblocks
        self._check_block(i, len(blocks))
        blk = blocks[i]
        q, k, v = blk.attn.in_proj_weight.chunk(3, dim=0)
        return standard_block_weights(
            q, k, v, blk.attn.out_proj.weight, blk.mlp.c_fc.weight, blk.mlp.c_proj.weight,
            blk.ln_1.weight, blk.ln_2.weight,
        )


def build_open_clip(cfg: BackboneConfig, model_name: str) -> FrozenBackbone:
    """``open_clip:<config>`` -> an open_clip backbone; never downloads."""
    register_package_configs()
    base = open_clip.get_model_config(model_name)
    if base is None:
        raise ConfigError(
            f"model.backbone.name={cfg.name}: unknown open_clip model config {model_name!r} "
            f"(see open_clip.list_models(); effowt's own configs live in effowt/configs/open_clip/)"
        )
    kwargs = dict(cfg.model_kwargs)
    timm_kwargs = kwargs.pop("timm_kwargs", {})
    model_cfg = _deep_merge(base, kwargs)
    mean, std = _mean_std(model_name, model_cfg)
    vision_cfg = model_cfg.get("vision_cfg", {})
    if vision_cfg.get("timm_model_name") in CNN_TRUNKS:
        trunk = create_timm_cnn(vision_cfg["timm_model_name"], f"model.backbone.name={cfg.name}")
        return CnnBackbone(cfg, trunk, mean=mean, std=std)
    if vision_cfg.get("timm_model_name"):
        trunk = create_timm_vit(vision_cfg["timm_model_name"], timm_kwargs, f"model.backbone.name={cfg.name}")
        return OpenClipTimmBackbone(cfg, trunk, mean=mean, std=std)
    try:
        # top-level keys replace open_clip's config entries: pass the merged ones;
        # build on the current default device (``meta`` when counting parameters)
        clip = create_open_clip_model(model_name, device=torch.empty(0).device, **{k: model_cfg[k] for k in kwargs})
    except (RuntimeError, TypeError, ValueError, AssertionError) as err:
        raise ConfigError(f"model.backbone.name={cfg.name}: cannot build open_clip model: {err}") from None
    visual = clip.visual
    if not isinstance(visual, VisionTransformer):
        raise ConfigError(
            f"model.backbone.name={cfg.name}: vision tower {type(visual).__name__} is not a ViT "
            "(only ViT-style towers can feed the side network)"
        )
    return OpenClipBackbone(cfg, visual, mean, std)
