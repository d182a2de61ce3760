"""Label accuracy of open-vocabulary track labels against a TAO ground truth.

A predicted box counts when it carries a ``label`` and matches a ground-truth box
of the same image (IoU >= ``iou``; one-to-one, Hungarian on IoU); it is right when
its label is the ground-truth category's ``name`` or ``caption``, or one of its
``captions`` (a grouped known category of the cut-out world lists its members'). Reported for
known and unknown categories separately, split as TrackEval's ``TAO_OW`` splits
them (its ``knowns`` / ``unknowns`` id sets; distractors count in neither).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from effowt.boxes import box_iou, xywh_to_xyxy


def tao_ow_splits() -> tuple[set[int], set[int]]:
    """TrackEval's TAO_OW ``knowns`` and ``unknowns`` category id sets."""
    from trackeval.datasets import TAO_OW

    split = object.__new__(TAO_OW)
    TAO_OW._split_known_unknown_distractor(split)
    return set(split.knowns), set(split.unknowns)


def label_accuracy(gt: dict[str, Any], pred: list[dict[str, Any]], iou: float = 0.5
                   ) -> dict[str, float | None] | None:
    """``{"known": share, "unknown": share}`` (None for a subset without matched boxes),
    or None when no prediction has a label or no category has a name / caption."""
    if not any("label" in rec for rec in pred):
        return None
    names = {c["id"]: {c[k] for k in ("name", "caption") if c.get(k)} | set(c.get("captions", []))
             for c in gt["categories"]}
    if not any(names.values()):
        return None
    knowns, unknowns = tao_ow_splits()
    gt_by_image: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for ann in gt["annotations"]:
        gt_by_image[ann["image_id"]].append(ann)
    pred_by_image: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for rec in pred:
        if "label" in rec:
            pred_by_image[rec["image_id"]].append(rec)
    hits: dict[str, list[bool]] = {"known": [], "unknown": []}
    for image_id, recs in pred_by_image.items():
        anns = gt_by_image.get(image_id, [])
        if not anns:
            continue
        ious = box_iou(np.stack([xywh_to_xyxy(r["bbox"]) for r in recs]),
                       np.stack([xywh_to_xyxy(a["bbox"]) for a in anns]))
        rows, cols = linear_sum_assignment(-ious)
        for r, c in zip(rows, cols):
            if ious[r, c] < iou:
                continue
            category = anns[c]["category_id"]
            subset = "known" if category in knowns else "unknown" if category in unknowns else None
            if subset is not None:
                hits[subset].append(recs[r]["label"] in names.get(category, set()))
    return {s: (float(np.mean(h)) if h else None) for s, h in hits.items()}


def format_label_accuracy(accuracy: dict[str, float | None]) -> str:
    """One line: ``label accuracy (matched boxes, IoU >= 0.5): known 81.0 %, unknown -``."""
    return "label accuracy (matched boxes, IoU >= 0.5): " + ", ".join(
        f"{s} {'-' if v is None else f'{100 * v:.1f} %'}" for s, v in accuracy.items())
