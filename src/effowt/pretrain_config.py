"""Hyper-parameters of the two VLM pretrainings, :func:`effowt.vlm.pretrain_vlm` and
:func:`effowt.lit.pretrain_lit`, apart from them so that ``effowt pretrain-vlm --help``
and ``effowt pretrain-lit --help`` show their defaults without importing torch."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from effowt.errors import ConfigError

# the checks a field can have: (test of a finite number, the condition in words)
_RULES = {
    "positive": (lambda v: v > 0, " > 0"),
    "non_negative": (lambda v: v >= 0, " >= 0"),
    "pair": (lambda v: v >= 2, " >= 2"),  # a contrastive step needs two or more captions
    "fraction": (lambda v: 0 < v < 1, " in (0, 1)"),
    "any": (lambda v: True, ""),
}


def _check(config: object, rules: dict[str, str]) -> None:
    """ConfigError naming the first field of ``config`` that is not a finite number of
    its annotated type (an ``int`` field takes no float or bool) or breaks its rule
    (``rules``: field name -> key of ``_RULES``; every field has one)."""
    for field in fields(config):  # type: ignore[arg-type]
        value = getattr(config, field.name)
        integer = field.type == "int"
        test, condition = _RULES[rules[field.name]]
        number = isinstance(value, int if integer else (int, float)) and not isinstance(value, bool)
        if not (number and math.isfinite(value) and test(value)):
            kind = "an integer" if integer else "a finite number"
            raise ConfigError(f"{type(config).__name__}.{field.name} must be {kind}{condition}, got {value!r}")


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

    def __post_init__(self) -> None:
        _check(self, {"steps": "positive", "batch_size": "positive", "lr": "positive", "weight_decay": "non_negative",
                      "warmup_steps": "non_negative", "crop": "positive", "jitter": "non_negative",
                      "val_fraction": "fraction", "seed": "any"})


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

    def __post_init__(self) -> None:
        _check(self, {"steps": "positive", "categories_per_step": "pair", "crops_per_step": "positive",
                      "lr": "positive", "weight_decay": "non_negative", "warmup_steps": "non_negative",
                      "crops_per_category": "positive", "held_out_per_category": "positive", "seed": "any"})
