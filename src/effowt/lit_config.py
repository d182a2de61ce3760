"""The hyper-parameters of :func:`effowt.lit.pretrain_lit`, apart from it so that
``effowt pretrain-lit --help`` shows their defaults without importing torch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LiTConfig:
    """Hyper-parameters of :func:`effowt.lit.pretrain_lit` (defaults make the shipped model)."""

    steps: int = 1000
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_steps: int = 50
    crops_per_category: int = 16
    held_out_per_category: int = 4
    seed: int = 0
