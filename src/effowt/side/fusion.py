"""Multi-scale fusion of the side stages into the feature pyramid fed to the heads.

For every output stride ``s``: ``out_s = sum_k w_{s,k} * resize_{s,k}(proj_k(x_k))``
over the stage maps ``x_k`` (strides 4, 8, 16). ``proj_k`` is a per-pixel linear
map ``C -> out_channels`` per stage, shared by all output levels and applied at
the stage's own resolution before resizing (resizing is linear and preserves
constants, so this equals projecting after resizing, and is computed once).
``resize`` is average pooling by ``s / t`` when the stage stride ``t`` is finer,
bilinear upsampling by ``t / s`` when it is coarser, identity when equal; strides
beyond the last stage (e.g. 32) thus come from pooling every stage.

Our choice for the weights (the paper only says "weighted"): EfficientDet's fast
normalised fusion, ``w_{s,k} = relu(v_{s,k}) / (sum_k relu(v_{s,k}) + 1e-4)``
with ``v`` initialised to 1 (equal shares), one learnable ``v`` per output level
and stage. It stays a convex-like combination without a softmax's cost and lets
a level switch a stage off.

With a single input (``SideConfig.fusion=False``, the ``no_fusion`` ablation: only
the last stage feeds every level) there is nothing to weigh; the weights are a
constant 1.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from effowt.side.layers import Pointwise


class FastNormalisedWeights(nn.Module):
    """``relu(v) / (sum_k relu(v) + eps)`` row-wise; ``v: [num_out, num_in]`` initialised to 1."""

    def __init__(self, num_out: int, num_in: int, eps: float = 1e-4) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_out, num_in))

    def forward(self) -> Tensor:
        w = F.relu(self.weight)
        return w / (w.sum(dim=1, keepdim=True) + self.eps)


class ConstantWeights(nn.Module):
    """All-ones weights ``[num_out, num_in]`` (no parameter)."""

    def __init__(self, num_out: int, num_in: int) -> None:
        super().__init__()
        self.register_buffer("weight", torch.ones(num_out, num_in), persistent=False)

    def forward(self) -> Tensor:
        return self.weight


def _resizer(in_stride: int, out_stride: int) -> nn.Module:
    if max(in_stride, out_stride) % min(in_stride, out_stride):
        raise ValueError(f"cannot resize stride {in_stride} to stride {out_stride}: not a multiple")
    if in_stride < out_stride:
        return nn.AvgPool2d(out_stride // in_stride)
    if in_stride > out_stride:
        return nn.Upsample(scale_factor=in_stride // out_stride, mode="bilinear", align_corners=False)
    return nn.Identity()


class MultiScaleFusion(nn.Module):
    """Stage maps ``[B, C, H/t, W/t]`` (``t`` in ``in_strides``) -> OrderedDict
    ``{"p<s>": [B, out_channels, H/s, W/s]}`` for ``s`` in ``out_strides`` (see module docstring)."""

    def __init__(self, channels: int, out_channels: int, in_strides: list[int], out_strides: list[int]) -> None:
        super().__init__()
        if not in_strides or not out_strides:
            raise ValueError("MultiScaleFusion needs at least one input and one output stride")
        self.in_strides, self.out_strides = list(in_strides), list(out_strides)
        self.names = [f"p{s}" for s in out_strides]
        self.projs = nn.ModuleList(Pointwise(channels, out_channels) for _ in in_strides)
        self.resizers = nn.ModuleList(
            nn.ModuleList(_resizer(t, s) for t in in_strides) for s in out_strides
        )
        weights = FastNormalisedWeights if len(in_strides) > 1 else ConstantWeights
        self.weights = weights(len(out_strides), len(in_strides))

    def forward(self, features: list[Tensor]) -> OrderedDict[str, Tensor]:
        if len(features) != len(self.projs):
            raise ValueError(f"MultiScaleFusion expects {len(self.projs)} maps, got {len(features)}")
        projected = [proj(x) for proj, x in zip(self.projs, features)]
        weights = self.weights()
        out: OrderedDict[str, Tensor] = OrderedDict()
        for name, w, resizers in zip(self.names, weights, self.resizers):
            out[name] = sum(w_k * r(p) for w_k, r, p in zip(w, resizers, projected))
        return out
