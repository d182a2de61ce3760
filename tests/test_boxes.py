"""effowt.boxes: the one place box IoU, clipping and conversion live (torchvision.ops underneath)."""

from __future__ import annotations

import numpy as np
import pytest

from effowt.boxes import box_iou, clip_boxes, xywh_to_xyxy, xyxy_to_xywh


def test_iou_of_hand_made_boxes() -> None:
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 5, 5]], np.float32)
    assert box_iou(a, b)[0] == pytest.approx([1.0, 50 / 150, 0.0, 25 / 100])
    assert box_iou(a, b).shape == (1, 4) and box_iou(a, b).dtype == np.float32
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 4)


def test_boxes_without_area_have_iou_zero_not_nan() -> None:
    flat = np.array([[5, 5, 5, 5], [10, 0, 10, 8]], np.float32)  # clipped at a frame edge
    inverted = np.array([[10, 10, 0, 0]], np.float32)  # a constant-velocity prediction gone inside out
    ious = box_iou(np.concatenate([flat, inverted]), np.concatenate([flat, inverted, [[0, 0, 10, 10]]]))
    assert np.isfinite(ious).all() and (ious == 0).all()


def test_clip_to_the_frame_keeps_the_input() -> None:
    boxes = np.array([[-5, -1, 30, 12], [2, 3, 4, 5]], np.float32)
    before = boxes.copy()
    assert clip_boxes(boxes, height=10, width=20).tolist() == [[0, 0, 20, 10], [2, 3, 4, 5]]
    assert (boxes == before).all()


def test_json_edge_conversions_round_trip() -> None:
    assert xywh_to_xyxy([1.5, 2, 3, 4]).tolist() == [1.5, 2, 4.5, 6] and xywh_to_xyxy([1, 2, 3, 4]).dtype == np.float32
    assert xyxy_to_xywh(np.array([1.5, 2, 4.5, 6], np.float32)).tolist() == [1.5, 2, 3, 4]
    many = np.array([[0, 0, 1, 1], [2, 3, 5, 9]], np.float32)
    assert (xywh_to_xyxy(xyxy_to_xywh(many)) == many).all()
