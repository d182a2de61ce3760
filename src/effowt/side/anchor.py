"""Where the side network's output goes: replacing the backbone's features, or added
onto them.

``SideConfig.output`` picks one of two output modules at construction, so that
:class:`~effowt.side.network.SideNetwork`'s forward has no branch on it::

    fused = MultiScaleFusion(stage maps)             {"p8": [B, C, H/8, W/8], ...}
    replace:   pyramid = fused                       (the paper's layout)
    residual:  pyramid = LinearPyramid(last tap) + scale * fused,   scale = residual_init (0)

Our choices (the paper is silent; ``../shared/paper/notes.md`` section 7):

* **replace** is EffOWT as described: the heads read only the side stream, a
  ``D / r``-wide rebuild of the backbone's features from the ladders. At step 0
  it is a random function of the taps, so it starts below the head-only model.
* **residual** keeps the frozen backbone's last tap in the heads' path, as
  UniPT adds its side output onto the backbone's final features and
  ViT-Adapter / Mona / DTL start their added branch at (near) zero: the side
  contribution enters through a per-level, per-channel scale initialised to
  ``residual_init`` (0 by default, ViT-Adapter's gamma), so the untrained model
  *is* the head-only model with a :class:`LinearPyramid` neck
  (``model.mode=head model.pyramid=linear``), and head-only is a floor the side
  network can only improve on. With the scale at exactly 0 the side network gets
  no gradient on the first step; the scale does, and the side network follows
  from the second step on.
* **The base path is thin on purpose.** A full ViTDet simple pyramid beside the
  side network would double the trainable parameters at the paper's scale (its
  stride-8 level alone is a 1024 -> 512 transposed conv, 2.1 M); a LayerNorm
  (no affine) and one ``Linear(D -> out_channels)`` at the tap's resolution,
  resampled to each level, is 131 K at EVA-02-L (0.04 % of full).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from effowt.side.layers import resize


class LinearPyramid(nn.Module):
    """Pyramid from the LAST tapped backbone map through one per-pixel linear map.

    ``tap [B, D, h, w] -> LayerNorm over D (no affine) -> Linear(D -> channels) ->
    resize to [B, channels, H/s, W/s]`` for every stride ``s`` (bilinear up,
    average-pooled down; :func:`effowt.side.layers.resize`). The linear map runs
    at the tap's resolution, before resampling (they commute). Same call as
    :class:`effowt.models.necks.SimpleFeaturePyramid`: ``(x, taps) -> OrderedDict``.
    """

    def __init__(self, embed_dim: int, channels: int, strides: list[int]) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.out_channels = channels
        self.strides = list(strides)
        self.proj = nn.Linear(embed_dim, channels)

    def forward(self, x: Tensor, taps: list[Tensor]) -> OrderedDict[str, Tensor]:
        """``x``: the preprocessed input [B, 3, H, W] (H, W multiples of the largest
        stride); ``taps``: backbone maps, the last one is used.
        Returns ``{"p<s>": FloatTensor[B, channels, H/s, W/s]}``."""
        last = taps[-1].permute(0, 2, 3, 1)
        y = self.proj(F.layer_norm(last, (self.embed_dim,))).permute(0, 3, 1, 2)
        h, w = x.shape[-2:]
        return OrderedDict((f"p{s}", resize(y, (h // s, w // s))) for s in self.strides)


class ReplaceOutput(nn.Module):
    """The paper's layout: the heads read the fused side pyramid as it is."""

    def forward(self, fused: OrderedDict[str, Tensor], x: Tensor, taps: list[Tensor]) -> OrderedDict[str, Tensor]:
        return fused


class ResidualOutput(nn.Module):
    """``base(x, taps)[p] + scale_p * fused[p]`` per level ``p``; ``scale_p``: one value
    per channel (``[channels]``, initialised to ``init``; 1-D, so no weight decay)."""

    def __init__(self, base: LinearPyramid, strides: list[int], init: float) -> None:
        super().__init__()
        self.base = base
        channels = base.out_channels
        self.scale = nn.ParameterDict({f"p{s}": nn.Parameter(torch.full((channels,), float(init))) for s in strides})

    def forward(self, fused: OrderedDict[str, Tensor], x: Tensor, taps: list[Tensor]) -> OrderedDict[str, Tensor]:
        base = self.base(x, taps)
        return OrderedDict((k, base[k] + self.scale[k].view(1, -1, 1, 1) * v) for k, v in fused.items())


def build_output(output: str, embed_dim: int, channels: int, strides: list[int], init: float) -> nn.Module:
    """:class:`ReplaceOutput` for ``"replace"``, :class:`ResidualOutput` over a
    :class:`LinearPyramid` for ``"residual"``."""
    if output == "replace":
        return ReplaceOutput()
    return ResidualOutput(LinearPyramid(embed_dim, channels, strides), strides, init)
