"""Necks of the ``head``, ``full`` and ``lora`` modes: ViTDet's simple feature pyramid
(one map, the ViT case) and torchvision's FPN over a CNN's taps of several strides."""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import FeaturePyramidNetwork

from effowt.errors import ConfigError


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


class TapFeaturePyramid(nn.Module):
    """torchvision's FPN (Lin et al. 2017) over the backbone taps of a CNN, whose strides differ.

    Our choices (the paper is silent; its backbones are ViTs with one stride):

    - **Every level from its own stage**: the ViTDet pyramid rebuilds all strides from the
      last (1/32) map alone, which starves fine levels on a CNN whose fine stages are
      there to be read (the side network reads them through its ladders); FPN's lateral
      1x1 + top-down sum + 3x3 gives the non-side modes the same multi-scale access.
    - Taps finer than the finest head stride are left out (a top-down FPN sends nothing
      from them to coarser levels); a head stride coarser than every tap is made by
      stride-2 max-pooling of the coarsest level (torchvision's ``LastLevelMaxPool``).
    - GroupNorm(32) after the lateral and output convs, as the other necks use.
    """

    def __init__(self, tap_dims: list[int], tap_strides: list[int], channels: int, strides: list[int]) -> None:
        super().__init__()
        used = [i for i, s in enumerate(tap_strides) if s >= min(strides)]
        self.tap_index = used
        self.tap_names = [f"p{tap_strides[i]}" for i in used]
        used_strides = [tap_strides[i] for i in used]
        if not used or sorted(set(used_strides)) != used_strides:
            raise ConfigError(
                f"model.pyramid=fpn needs backbone taps of distinct, increasing strides at or above the head's "
                f"finest stride {min(strides)}; the taps have strides {list(tap_strides)} (use simple or linear)")
        missing = [s for s in strides if s < used_strides[-1] and s not in used_strides]
        if missing:
            raise ConfigError(f"model.head.strides={list(strides)}: {missing} is no tap stride "
                              f"({used_strides}) for model.pyramid=fpn")
        self.strides = list(strides)
        self.out_channels = channels
        self.coarsest = used_strides[-1]
        self.fpn = FeaturePyramidNetwork([tap_dims[i] for i in used], channels,
                                         norm_layer=lambda width: nn.GroupNorm(32, width))

    def forward(self, x: torch.Tensor, taps: list[torch.Tensor]) -> OrderedDict[str, torch.Tensor]:
        """``x``: the padded input (unused: the taps carry their sizes); ``taps``: the
        backbone maps ``[B, tap_dims[k], H/tap_strides[k], W/tap_strides[k]]``.
        Returns ``{"p<s>": FloatTensor[B, channels, H/s, W/s]}`` for the head strides."""
        levels = self.fpn(OrderedDict((name, taps[i]) for name, i in zip(self.tap_names, self.tap_index)))
        stride, last = self.coarsest, levels[f"p{self.coarsest}"]
        while stride < self.strides[-1]:
            stride, last = stride * 2, F.max_pool2d(last, 1, stride=2)
            levels[f"p{stride}"] = last
        return OrderedDict((f"p{s}", levels[f"p{s}"]) for s in self.strides)
