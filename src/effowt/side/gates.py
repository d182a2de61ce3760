"""Fusion of a side connection's output ``f_b`` with the side stream ``f_s``.

:class:`GateFusion` is the seed's formula ``f_s^{i+1} = g_i f_b^i + (1 - g_i) f_s^i``
with ``g_i = sigmoid(alpha_i / T)``, one learnable scalar ``alpha_i`` per side
connection and ``T = SideConfig.gate_temperature`` (0.1), as in Ladder Side-Tuning.
``alpha`` starts at ``T * logit(SideConfig.gate_init)``: by default 0, so ``g = 0.5``
(an exact average at the start, LST's value); our choice to expose it, since a
gate that starts open to the backbone (``g`` near 1) lets its signal through at
full strength from step 0, as the ``no_gate`` ablation does. LST puts
``g`` on the side term (``g f_s + (1 - g) f_b``); we follow the EffOWT seed and
put it on the backbone term. The two are the same family (``g <-> 1 - g``, i.e.
``alpha <-> -alpha``) and coincide at initialisation.

:class:`SumFusion` is the ``no_gate`` ablation: ``f_b + f_s``, no parameter.
:func:`build_fusion_gate` picks one of the two at construction so that the side
network's forward has no branch on the setting.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class GateFusion(nn.Module):
    """``g * f_b + (1 - g) * f_s`` with ``g = sigmoid(alpha / T)``; shapes ``[B, C, H, W]``."""

    def __init__(self, temperature: float = 0.1, init: float = 0.5) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"gate_temperature must be > 0, got {temperature}")
        if not 0.0 < init < 1.0:
            raise ValueError(f"gate_init must be in (0, 1), got {init}")
        self.temperature = temperature
        self.alpha = nn.Parameter(torch.tensor(temperature * math.log(init / (1.0 - init))))

    @property
    def gate(self) -> Tensor:
        """The current gate value ``g`` in (0, 1) (a 0-dim tensor)."""
        return torch.sigmoid(self.alpha / self.temperature)

    def coefficients(self) -> tuple[Tensor, Tensor]:
        """``(g, 1 - g)``: the weights on ``f_b`` and ``f_s``."""
        g = self.gate
        return g, 1 - g

    def forward(self, f_b: Tensor, f_s: Tensor) -> Tensor:
        g, keep = self.coefficients()
        return g * f_b + keep * f_s

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"


class SumFusion(nn.Module):
    """``f_b + f_s`` (the ``no_gate`` ablation); no parameter."""

    def coefficients(self) -> tuple[float, float]:
        """``(1, 1)``: the weights on ``f_b`` and ``f_s``."""
        return 1.0, 1.0

    def forward(self, f_b: Tensor, f_s: Tensor) -> Tensor:
        return f_b + f_s


def build_fusion_gate(gates: bool, temperature: float, init: float = 0.5) -> nn.Module:
    """:class:`GateFusion` (starting at ``g = init``) when ``gates`` else :class:`SumFusion`."""
    return GateFusion(temperature, init) if gates else SumFusion()
