"""Class-agnostic FCOS detection on a feature pyramid, reusing torchvision's FCOS.

torchvision's :class:`~torchvision.models.detection.FCOS` is held around a
parameter-free placeholder backbone; we call its ``head``, ``anchor_generator``,
``compute_loss`` and ``postprocess_detections`` on our own pyramid, so the
losses (sigmoid focal, GIoU, centerness BCE), target assignment (centre
sampling, per-level scale ranges) and decoding (top-k, score threshold,
class-wise NMS) are exactly torchvision's. There is one class, "object", label 0.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torchvision.models.detection import FCOS
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.fcos import FCOSHead
from torchvision.models.detection.image_list import ImageList

from effowt.config import HeadConfig

LOSS_NAMES = {"classification": "loss_cls", "bbox_regression": "loss_box", "bbox_ctrness": "loss_ctr"}


class _PyramidPlaceholder(nn.Module):
    """Stands in for FCOS's backbone: the pyramid is computed outside and passed in."""

    def __init__(self, out_channels: int) -> None:
        super().__init__()
        self.out_channels = out_channels


class DetectionHead(nn.Module):
    """FCOS head over the levels ``p<stride>`` of a pyramid with ``channels`` channels.

    One anchor point per location whose size equals the level's stride (so FCOS's
    scale ranges are ``[4s, 8s]`` per level, open-ended at both extremes).
    """

    def __init__(self, cfg: HeadConfig) -> None:
        super().__init__()
        self.level_names = [f"p{s}" for s in cfg.strides]
        anchors = AnchorGenerator(tuple((s,) for s in cfg.strides), ((1.0,),) * len(cfg.strides))
        head = FCOSHead(in_channels=cfg.channels, num_anchors=1, num_classes=1, num_convs=cfg.det_convs)
        self.fcos = FCOS(
            _PyramidPlaceholder(cfg.channels),
            num_classes=1,
            anchor_generator=anchors,
            head=head,
            center_sampling_radius=cfg.center_sampling_radius,
            score_thresh=cfg.score_thresh,
            nms_thresh=cfg.nms_thresh,
            detections_per_img=cfg.detections_per_img,
            topk_candidates=cfg.topk_candidates,
        )

    def _run(
        self, pyramid: OrderedDict[str, torch.Tensor], image_sizes: list[tuple[int, int]]
    ) -> tuple[dict[str, torch.Tensor], list[torch.Tensor], list[int]]:
        features = [pyramid[name] for name in self.level_names]
        first = features[0]
        padded = first.new_empty(first.shape[0], 0, *(d * int(self.level_names[0][1:]) for d in first.shape[-2:]))
        images = ImageList(padded, [tuple(s) for s in image_sizes])
        head_outputs = self.fcos.head(features)
        anchors = self.fcos.anchor_generator(images, features)
        return head_outputs, anchors, [f.shape[-2] * f.shape[-1] for f in features]

    def losses(
        self,
        pyramid: OrderedDict[str, torch.Tensor],
        image_sizes: list[tuple[int, int]],
        boxes: list[torch.Tensor],
    ) -> dict[str, torch.Tensor]:
        """Unweighted FCOS losses ``loss_cls``, ``loss_box``, ``loss_ctr``.

        Args:
            pyramid: ``{"p8": FloatTensor[B, C, H/8, W/8], ...}`` for the padded input.
            image_sizes: (h, w) of each image before padding.
            boxes: per image FloatTensor[N, 4], ``[x1, y1, x2, y2]`` pixels (N may be 0).
        """
        head_outputs, anchors, per_level = self._run(pyramid, image_sizes)
        targets = [{"boxes": b, "labels": torch.zeros(len(b), dtype=torch.int64, device=b.device)} for b in boxes]
        raw = self.fcos.compute_loss(targets, head_outputs, anchors, per_level)
        return {LOSS_NAMES[k]: v for k, v in raw.items()}

    def detect(
        self, pyramid: OrderedDict[str, torch.Tensor], image_sizes: list[tuple[int, int]]
    ) -> list[dict[str, torch.Tensor]]:
        """Per image ``{"boxes": FloatTensor[N, 4] xyxy px clipped to the image, "scores": [N]}``."""
        head_outputs, anchors, per_level = self._run(pyramid, image_sizes)
        split_outputs = {k: list(v.split(per_level, dim=1)) for k, v in head_outputs.items()}
        split_anchors = [list(a.split(per_level)) for a in anchors]
        dets = self.fcos.postprocess_detections(split_outputs, split_anchors, [tuple(s) for s in image_sizes])
        return [{"boxes": d["boxes"], "scores": d["scores"]} for d in dets]
