"""Small layers shared by the side network's parts.

Feature maps in the side network are NCHW (``[B, C, H, W]``) so that convolutions,
resampling and pooling need no reshaping. Per-pixel linear maps are written as
:class:`Pointwise` (``nn.Linear`` on the channel axis) rather than 1x1
``nn.Conv2d``: the two are the same function, and keeping ``nn.Conv2d`` for true
spatial convolutions lets the pure-Transformer ablation (``hybrid=False``) be
checked by looking for ``nn.Conv2d`` modules.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW map (``[B, C, H, W] -> [B, C, H, W]``).

    Batch-independent (unlike BatchNorm), so it behaves the same with the small
    per-GPU batches of detection training and in eval.
    """

    def forward(self, x: Tensor) -> Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class Pointwise(nn.Linear):
    """Per-pixel linear map of an NCHW map: ``[B, Cin, H, W] -> [B, Cout, H, W]``
    (a 1x1 convolution written as ``nn.Linear`` on the channel axis)."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class Mlp(nn.Module):
    """Channel MLP ``fc1 -> GELU -> fc2`` on an NCHW map (``[B, C, H, W]``).

    The layer names ``fc1``/``fc2`` match the backbone's MLP so that structural
    pruning can copy its weights (see :mod:`effowt.side.pruning`).
    """

    def __init__(self, dim: int, hidden: int, act_layer: type[nn.Module] = nn.GELU) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        x = x.permute(0, 2, 3, 1)
        return self.fc2(self.act(self.fc1(x))).permute(0, 3, 1, 2)


def resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Resample an NCHW map to ``size`` (``(H, W)``); a no-op when it already fits.

    Growing is bilinear interpolation. Shrinking is adaptive average pooling (a
    box filter over the source pixels of each target pixel): plain bilinear
    sampling would skip pixels and alias when shrinking by more than 2x, and
    bilinear with ``antialias=True`` lacks bfloat16 support on CPU. A map that
    shrinks along one axis and grows along the other is pooled, then interpolated.
    """
    h, w = x.shape[-2:]
    if size[0] < h or size[1] < w:
        x = F.adaptive_avg_pool2d(x, (min(h, size[0]), min(w, size[1])))
    if tuple(x.shape[-2:]) != tuple(size):
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    return x


class Resize(nn.Module):
    """:func:`resize` as a module (``forward(x, size)``), so that profiling hooks can
    time the resampling apart from the layers around it."""

    def forward(self, x: Tensor, size: tuple[int, int]) -> Tensor:
        return resize(x, size)


def to_tokens(x: Tensor) -> Tensor:
    """``[B, C, H, W] -> [B, H*W, C]``."""
    return x.flatten(2).transpose(1, 2)


def from_tokens(x: Tensor, size: tuple[int, int]) -> Tensor:
    """``[B, H*W, C] -> [B, C, H, W]`` for ``size = (H, W)``."""
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], *size)


