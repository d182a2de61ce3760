"""Hyper-parameters of the two VLM pretrainings, :func:`effowt.vlm.pretrain_vlm` and
:func:`effowt.lit.pretrain_lit`, apart from them so that ``effowt pretrain-vlm --help``
and ``effowt pretrain-lit --help`` show their defaults without importing torch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class PretrainConfig:
    """Hyper-parameters of :func:`effowt.vlm.pretrain_vlm` (defaults make the shipped model)."""

    steps: int = 600
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_steps: int = 30
    crop: int = 64
    jitter: int = 6
    val_fraction: float = 0.1
    seed: int = 0


@dataclass
class LiTConfig:
    """Hyper-parameters of :func:`effowt.lit.pretrain_lit` (defaults make the shipped model)."""

    steps: int = 1000
    categories_per_step: int = 64
    crops_per_step: int = 4
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_steps: int = 50
    crops_per_category: int = 16
    held_out_per_category: int = 4
    seed: int = 0
