"""Appearance embeddings for boxes: RoIAlign on one pyramid level, then a small MLP."""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import roi_align

from effowt.config import HeadConfig


class ReIDHead(nn.Module):
    """``reid_roi x reid_roi`` RoIAlign on level ``p<reid_stride>`` -> Linear -> ReLU ->
    Linear -> L2-normalised ``reid_dim`` embedding.

    Parameters: ``C * reid_roi**2 * reid_hidden + reid_hidden * reid_dim`` (+ biases).
    """

    def __init__(self, cfg: HeadConfig) -> None:
        super().__init__()
        self.level = f"p{cfg.reid_stride}"
        self.stride = cfg.reid_stride
        self.roi = cfg.reid_roi
        self.mlp = nn.Sequential(
            nn.Flatten(1),
            nn.Linear(cfg.channels * cfg.reid_roi**2, cfg.reid_hidden),
            nn.ReLU(inplace=True),
            nn.Linear(cfg.reid_hidden, cfg.reid_dim),
        )

    def forward(self, pyramid: OrderedDict[str, torch.Tensor], boxes: list[torch.Tensor]) -> list[torch.Tensor]:
        """Embeddings of ``boxes``.

        Args:
            pyramid: feature maps by level name; uses ``p<reid_stride>`` [B, C, H/s, W/s].
            boxes: per image FloatTensor[N_i, 4], ``[x1, y1, x2, y2]`` pixels of the padded input.

        Returns:
            per image FloatTensor[N_i, reid_dim], rows of unit L2 norm.
        """
        feature = pyramid[self.level]
        rois = roi_align(
            feature, [b.to(feature.dtype) for b in boxes], output_size=self.roi,
            spatial_scale=1.0 / self.stride, sampling_ratio=2, aligned=True,
        )
        embeddings = F.normalize(self.mlp(rois), dim=1)
        return list(embeddings.split([len(b) for b in boxes]))
