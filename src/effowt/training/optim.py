"""Optimizer, learning-rate schedule and loss weighting for :mod:`effowt.training`."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch.optim.lr_scheduler import LambdaLR

from effowt.config import TrainConfig
from effowt.errors import ConfigError

DET_TERMS = ("loss_cls", "loss_box", "loss_ctr")
REID_TERMS = ("loss_reid", "loss_reid_aux")
LOSS_TERMS = DET_TERMS + REID_TERMS


def weighted_loss(losses: dict[str, torch.Tensor], cfg: TrainConfig) -> torch.Tensor:
    """Total loss from the model's unweighted terms.

    ``det_weight * (loss_cls + loss_box + loss_ctr) + reid_weight * loss_reid
    + reid_aux_weight * loss_reid_aux``. The model must return exactly these five
    scalar terms (a missing or extra term is a programming error: ``KeyError``).
    """
    if set(losses) != set(LOSS_TERMS):
        raise KeyError(f"model returned loss terms {sorted(losses)}, expected {list(LOSS_TERMS)}")
    det = sum(losses[k] for k in DET_TERMS)
    return det * cfg.det_weight + losses["loss_reid"] * cfg.reid_weight + losses["loss_reid_aux"] * cfg.reid_aux_weight


def param_groups(params: Iterable[torch.nn.Parameter], weight_decay: float) -> list[dict]:
    """Split parameters into a decayed and an undecayed AdamW group.

    Parameters with fewer than two dimensions -- biases, norm scales and shifts,
    the side network's scalar gate logits alpha -- get no weight decay: shrinking
    them towards zero changes what the layer computes rather than regularising it
    (the timm / open_clip convention). Matrices and conv kernels (LoRA included)
    are decayed.
    """
    decay, no_decay = [], []
    for p in params:
        (decay if p.ndim >= 2 else no_decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def build_optimizer(params: Iterable[torch.nn.Parameter], cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW over ``params`` (the model's trainable parameters only)."""
    groups = [g for g in param_groups(params, cfg.weight_decay) if g["params"]]
    if not groups:
        raise ConfigError("the model has no trainable parameters")
    return torch.optim.AdamW(groups, lr=cfg.lr)


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Multiplier of ``cfg.lr`` for optimizer step ``step`` (0-based).

    Linear warm-up from ``1/warmup_steps`` to 1 over ``warmup_steps`` steps, then
    ``cosine`` decay to 0 at ``max_steps``, or ``step`` decay: x0.1 at each
    milestone (fractions of ``max_steps``).
    """
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.schedule == "cosine":
        span = max(1, cfg.max_steps - cfg.warmup_steps)
        progress = min(1.0, (step - cfg.warmup_steps) / span)
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    passed = sum(step >= m * cfg.max_steps for m in cfg.step_milestones)
    return 0.1**passed


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig) -> LambdaLR:
    """LambdaLR applying :func:`lr_factor`; call ``.step()`` once per optimizer step."""

    def factor(step: int) -> float:
        return lr_factor(step, cfg)

    return LambdaLR(optimizer, factor)
