"""Parameter accounting per transfer mode (the paper's "trainable parameters" column).

Models are built on the ``meta`` device: parameters get shapes but no storage, so
counts are exact and building even EVA-02-L four times is instant. Backbone
weights are not loaded and the side network uses random init for counting
(neither changes a count).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from effowt.backbones.weights import random_init_expected
from effowt.config import TRANSFER_MODES, ModelConfig
from effowt.models.effowt import EffOWT
from effowt.models.transfer import build_model


def count_parameters(model: nn.Module) -> dict[str, int]:
    """``{"total", "trainable"}`` numbers of scalar parameters (shared ones once)."""
    params = list(model.parameters())
    return {"total": sum(p.numel() for p in params), "trainable": sum(p.numel() for p in params if p.requires_grad)}


def build_for_counting(cfg: ModelConfig, mode: str) -> EffOWT:
    """``build_model`` for ``mode`` on the meta device, without weights."""
    cfg = dataclasses.replace(
        cfg,
        mode=mode,
        backbone=dataclasses.replace(cfg.backbone, weights=None),
        side=dataclasses.replace(cfg.side, init="random"),
    )
    with random_init_expected(), torch.device("meta"):
        return build_model(cfg)


def parameter_report(cfg: ModelConfig, modes: tuple[str, ...] | list[str] = TRANSFER_MODES) -> dict:
    """Counts per mode, share of ``full``'s trainable parameters, heads and side split.

    Returns:
        ``{"<mode>": {"total", "trainable", "trainable_pct_of_full"}, ...,
        "heads": {"detection", "reid", "total"},
        "side_split_pct": {"s4", "s8", "s16"}}`` (the last only when ``side`` is
        among ``modes``: each stage's share of the side network's stage parameters).
    """
    models = {mode: build_for_counting(cfg, mode) for mode in dict.fromkeys([*modes, "full"])}
    full_trainable = count_parameters(models["full"])["trainable"]
    report: dict = {}
    for mode in modes:
        counts = count_parameters(models[mode])
        counts["trainable_pct_of_full"] = round(100.0 * counts["trainable"] / full_trainable, 3)
        report[mode] = counts
    any_model = models[modes[0]]
    detection = count_parameters(any_model.detector)["total"]
    reid = count_parameters(any_model.reid)["total"]
    report["heads"] = {"detection": detection, "reid": reid, "total": detection + reid}
    if "side" in modes:
        split = models["side"].side.stage_parameter_split()
        total = sum(split.values()) or 1
        report["side_split_pct"] = {k: round(100.0 * v / total, 1) for k, v in split.items()}
    return report
