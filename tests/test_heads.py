"""FCOS detection head, ReID head and the contrastive ReID loss."""

from __future__ import annotations

from collections import OrderedDict

import torch

from effowt.config import HeadConfig
from effowt.heads import DetectionHead, ReIDHead, reid_losses

CFG = HeadConfig(channels=32, strides=[8, 16, 32], det_convs=1, reid_hidden=16, reid_dim=8, detections_per_img=20)


def _pyramid(batch: int = 2, size: int = 64) -> OrderedDict[str, torch.Tensor]:
    return OrderedDict((f"p{s}", torch.randn(batch, 32, size // s, size // s)) for s in CFG.strides)


def test_fcos_losses_and_empty_images_give_zero_box_loss() -> None:
    head = DetectionHead(CFG)
    pyramid = _pyramid()
    boxes = [torch.tensor([[4.0, 6.0, 40.0, 50.0]]), torch.zeros(0, 4)]
    losses = head.losses(pyramid, [(64, 64)] * 2, boxes)
    assert set(losses) == {"loss_cls", "loss_box", "loss_ctr"}
    assert all(torch.isfinite(v) for v in losses.values())
    empty = head.losses(pyramid, [(64, 64)] * 2, [torch.zeros(0, 4), torch.zeros(0, 4)])
    assert empty["loss_box"].item() == 0.0 and empty["loss_ctr"].item() == 0.0
    assert empty["loss_cls"].item() > 0.0  # every location is a negative
    empty["loss_cls"].backward()
    assert head.fcos.head.classification_head.cls_logits.weight.grad is not None


def test_fcos_detections_are_clipped_to_image_sizes() -> None:
    head = DetectionHead(CFG).eval()
    with torch.no_grad():
        dets = head.detect(_pyramid(), [(50, 60), (64, 64)])
    assert len(dets) == 2
    for det, (h, w) in zip(dets, [(50, 60), (64, 64)]):
        assert det["boxes"].shape[1] == 4 and len(det["boxes"]) == len(det["scores"]) <= CFG.detections_per_img
        assert (det["boxes"][:, 2] <= w).all() and (det["boxes"][:, 3] <= h).all()
        assert (det["scores"] >= CFG.score_thresh).all()


def test_reid_head_unit_embeddings_per_image() -> None:
    head = ReIDHead(CFG)
    boxes = [torch.tensor([[0.0, 0.0, 20.0, 20.0], [10.0, 10.0, 60.0, 40.0]]), torch.zeros(0, 4)]
    out = head(_pyramid(), boxes)
    assert [tuple(e.shape) for e in out] == [(2, 8), (0, 8)]
    torch.testing.assert_close(out[0].norm(dim=1), torch.ones(2))


def test_reid_loss_prefers_matching_positives() -> None:
    torch.manual_seed(0)
    emb = torch.nn.functional.normalize(torch.randn(6, 16), dim=1)
    ids = torch.arange(6)
    views = torch.cat([emb, emb])  # view 2 sees the same objects with identical embeddings
    image_index = torch.tensor([0] * 6 + [1] * 6)
    matched, matched_aux = reid_losses(views, torch.cat([ids, ids]), image_index)
    shuffled_emb = torch.cat([emb, emb[torch.tensor([1, 2, 3, 4, 5, 0])]])
    shuffled, shuffled_aux = reid_losses(shuffled_emb, torch.cat([ids, ids]), image_index)
    assert matched < shuffled and matched_aux < shuffled_aux


def test_reid_loss_needs_a_positive_in_another_image() -> None:
    emb = torch.nn.functional.normalize(torch.randn(4, 8), dim=1).requires_grad_(True)
    # ids 1 repeat only inside image 0: not positives; nothing else repeats
    loss, aux = reid_losses(emb, torch.tensor([1, 1, 2, 3]), torch.tensor([0, 0, 1, 1]))
    assert loss.item() == 0.0 and aux.item() == 0.0
    (loss + aux).backward()
    assert emb.grad is not None and torch.count_nonzero(emb.grad) == 0


def test_reid_loss_finite_without_negatives() -> None:
    emb = torch.nn.functional.normalize(torch.randn(2, 8), dim=1).requires_grad_(True)
    loss, aux = reid_losses(emb, torch.tensor([5, 5]), torch.tensor([0, 1]))
    (loss + aux).backward()
    assert torch.isfinite(loss) and loss.item() < 1e-3 and torch.isfinite(emb.grad).all()
