"""The ViTDet-style simple feature pyramid used by the ``head``, ``full`` and ``lora`` modes."""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn


def _conv_norm(in_ch: int, out_ch: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2, bias=False), nn.GroupNorm(32, out_ch)
    )


def _rescale(dim: int, factor: float) -> tuple[nn.Module, int]:
    """Module changing a map's stride by ``factor`` (a power of two), and its output
    width: transposed convs halving the width per 2x up (ViTDet), max-pooling down."""
    if factor >= 1:
        return (nn.Identity() if factor == 1 else nn.MaxPool2d(int(factor), stride=int(factor))), dim
    layers: list[nn.Module] = []
    width = dim
    for step in range(round(math.log2(1 / factor))):
        if step:
            layers += [nn.GroupNorm(1, width), nn.GELU()]
        layers.append(nn.ConvTranspose2d(width, width // 2, 2, stride=2))
        width //= 2
    return nn.Sequential(*layers), width


class SimpleFeaturePyramid(nn.Module):
    """Pyramid from the LAST tapped backbone map only (ViTDet, Li et al. 2022).

    The tap (stride = patch size p) is first resized bilinearly to the nearest
    power-of-two stride ``base`` when p is not one (EVA-02's 14 -> 16); each level is
    then made from it with transposed convs (finer strides), identity, or
    max-pooling (coarser), followed by a 1x1 conv to ``channels`` and a 3x3 conv,
    each with GroupNorm(32).
    """

    def __init__(self, embed_dim: int, patch_size: int, channels: int, strides: list[int]) -> None:
        super().__init__()
        self.strides = list(strides)
        self.base = 2 ** round(math.log2(patch_size))
        self.out_channels = channels
        self.levels = nn.ModuleDict()
        for s in strides:
            rescale, width = _rescale(embed_dim, s / self.base)
            self.levels[f"p{s}"] = nn.Sequential(
                rescale, _conv_norm(width, channels, 1), _conv_norm(channels, channels, 3)
            )

    def forward(self, x: torch.Tensor, taps: list[torch.Tensor]) -> OrderedDict[str, torch.Tensor]:
        """``x``: the preprocessed input [B, 3, H, W] (H, W multiples of the largest
        stride); ``taps``: backbone maps, the last one is used.
        Returns ``{"p<s>": FloatTensor[B, channels, H/s, W/s]}``."""
        size = (math.ceil(x.shape[-2] / self.base), math.ceil(x.shape[-1] / self.base))
        last = taps[-1]
        if tuple(last.shape[-2:]) != size:
            last = F.interpolate(last, size=size, mode="bilinear", align_corners=False)
        return OrderedDict((name, level(last)) for name, level in self.levels.items())
