"""Side connections ("ladders"): one per tapped backbone block.

A side connection turns a tapped backbone map ``[B, D, h, w]`` into the side
width and the side stage's resolution: ``Linear(D -> C)`` with bias on the
channels (Ladder Side-Tuning's ladder), then bilinear resampling to the stage's
``(H_s, W_s)``. The linear map runs before the resampling, at the backbone's
(coarser) token resolution, which is cheaper and equal in result (bilinear
resampling commutes with a per-pixel affine map).

Our choice where the paper is silent: the tap is LayerNorm-ed over ``D``
*without* affine parameters before the linear map. ViT residual streams carry a
few channels with magnitudes in the hundreds that grow with depth; normalising
keeps every ladder's output at the same scale whatever block it taps (as the
LayerNorm before injection in ViT-Adapter-style side paths) and adds no parameter.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from effowt.side.layers import Resize


class SideConnection(nn.Module):
    """Ladder from one backbone tap to a side stage: ``[B, D, h, w] -> [B, C, H_s, W_s]``."""

    def __init__(self, embed_dim: int, width: int) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.proj = nn.Linear(embed_dim, width)
        self.resample = Resize()

    def project(self, tap: Tensor) -> Tensor:
        """``tap [B, D, h, w] -> [B, C, h, w]``: LayerNorm over ``D`` (no affine), Linear."""
        x = F.layer_norm(tap.permute(0, 2, 3, 1), (self.embed_dim,))
        return self.proj(x).permute(0, 3, 1, 2)

    def forward(self, tap: Tensor, size: tuple[int, int]) -> Tensor:
        """Project ``tap`` (``[B, D, h, w]``) to the side width and resample it to ``size``."""
        return self.resample(self.project(tap), size)
