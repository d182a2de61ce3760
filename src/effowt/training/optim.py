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


def per_process_batch(cfg: TrainConfig, world_size: int) -> int:
    """Images per process and micro-batch in a world of ``world_size`` processes:
    ``train.batch_size``, or with ``train.global_batch`` set,
    ``global_batch / (world_size * accumulate)`` (``ConfigError`` unless it divides
    evenly: a silently different batch would change the recipe)."""
    if cfg.global_batch is None:
        return cfg.batch_size
    share = world_size * cfg.accumulate
    if cfg.global_batch % share:
        raise ConfigError(
            f"train.global_batch={cfg.global_batch} does not split evenly over {world_size} process(es) "
            f"x train.accumulate={cfg.accumulate}; choose a WORLD_SIZE and accumulate whose product divides it"
        )
    return cfg.global_batch // share


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


def is_pretrained(name: str) -> bool:
    """Whether trainable parameter ``name`` (an ``EffOWT.named_parameters()`` name) is a
    pretrained backbone weight: everything under ``backbone.`` except the LoRA
    matrices peft injects there (``lora_``), which are new."""
    return name.startswith("backbone.") and "lora_" not in name


def param_groups(
    named_params: Iterable[tuple[str, torch.nn.Parameter]], cfg: TrainConfig
) -> list[dict]:
    """AdamW parameter groups: (new | pretrained) x (decayed | undecayed).

    Learning rates: parts that are new (side network, pyramid, heads, LoRA) train at
    ``train.lr``; pretrained backbone weights that train (``full`` mode) at
    ``train.lr * train.backbone_lr_mult``, as detection fine-tuning does
    (SimOWT / detectron2's ``BACKBONE_MULTIPLIER`` 0.1). Weight decay: parameters
    with fewer than two dimensions -- biases, norm scales and shifts, the side
    network's scalar gate logits alpha -- get none: shrinking them towards zero
    changes what the layer computes rather than regularising it (the timm /
    open_clip convention); matrices and conv kernels (LoRA included) are decayed.
    Each group carries a ``"name"`` (``new/decay``, ``backbone/no_decay``, ...);
    empty groups are left out.
    """
    groups: dict[tuple[str, str], list[torch.nn.Parameter]] = {
        (part, decay): [] for part in ("new", "backbone") for decay in ("decay", "no_decay")
    }
    for name, p in named_params:
        part = "backbone" if is_pretrained(name) else "new"
        groups[(part, "decay" if p.ndim >= 2 else "no_decay")].append(p)
    lrs = {"new": cfg.lr, "backbone": cfg.lr * cfg.backbone_lr_mult}
    return [
        {
            "name": f"{part}/{decay}",
            "params": params,
            "lr": lrs[part],
            "weight_decay": cfg.weight_decay if decay == "decay" else 0.0,
        }
        for (part, decay), params in groups.items()
        if params
    ]


def build_optimizer(
    named_params: Iterable[tuple[str, torch.nn.Parameter]], cfg: TrainConfig
) -> torch.optim.AdamW:
    """AdamW over ``named_params`` (the model's trainable parameters only, with their
    names), grouped by :func:`param_groups`."""
    groups = param_groups(named_params, cfg)
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
