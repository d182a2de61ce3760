"""Box operations in one place, on :mod:`torchvision.ops`, for NumPy boxes.

Boxes are ``[x1, y1, x2, y2]`` in pixels inside the library and ``[x, y, w, h]`` only
in TAO/COCO json at the edges (:func:`xywh_to_xyxy`, :func:`xyxy_to_xywh`). The
functions take and return NumPy arrays (the tracker's and the evaluation's boxes
live on the host); the arithmetic is torchvision's.
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision import ops


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix float32[N, M] between ``[x1, y1, x2, y2]`` boxes a[N, 4] and b[M, 4]
    (:func:`torchvision.ops.box_iou`); pairs without area (empty union) have IoU 0."""
    a = torch.as_tensor(np.asarray(a, dtype=np.float32).reshape(-1, 4))
    b = torch.as_tensor(np.asarray(b, dtype=np.float32).reshape(-1, 4))
    return torch.nan_to_num(ops.box_iou(a, b), nan=0.0).clamp_(min=0.0).numpy()


def clip_boxes(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """float32[N, 4] ``[x1, y1, x2, y2]`` boxes clipped to a ``height`` x ``width`` frame
    (``0 <= x <= width``, ``0 <= y <= height``; :func:`torchvision.ops.clip_boxes_to_image`)."""
    boxes = torch.as_tensor(np.asarray(boxes, dtype=np.float32).reshape(-1, 4))
    return ops.clip_boxes_to_image(boxes, (int(height), int(width))).numpy()


def xywh_to_xyxy(boxes: np.ndarray | list[float]) -> np.ndarray:
    """``[x, y, w, h]`` -> float32 ``[x1, y1, x2, y2]``, for one box [4] or many [N, 4]."""
    array = np.asarray(boxes, dtype=np.float64)
    out = ops.box_convert(torch.as_tensor(array.reshape(-1, 4)), "xywh", "xyxy")
    return out.numpy().astype(np.float32).reshape(array.shape)


def xyxy_to_xywh(boxes: np.ndarray | list[float]) -> np.ndarray:
    """``[x1, y1, x2, y2]`` -> float64 ``[x, y, w, h]`` (the json's numbers), for one box
    [4] or many [N, 4]."""
    array = np.asarray(boxes, dtype=np.float64)
    return ops.box_convert(torch.as_tensor(array.reshape(-1, 4)), "xyxy", "xywh").numpy().reshape(array.shape)
