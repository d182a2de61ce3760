"""OWTA / D.Re / A.Acc on TAO-OW with the official TrackEval code.

This module only wraps ``trackeval.datasets.TAO_OW`` + ``trackeval.metrics.HOTA``
(the metric is not re-implemented). It validates both json files first, so a bad
input gives one clear :class:`~effowt.errors.DataError` instead of a KeyError deep
inside TrackEval, then lays the files out the way TrackEval expects in a
temporary folder::

    tmp/gt/gt.json                               (GT_FOLDER: exactly one json)
    tmp/trackers/effowt/data/results.json        (TRACKERS_FOLDER/<tracker>/data)

and runs the evaluator once per subset (``known``, ``unknown``, ``all``) with
every output, plot, log and print switched off, so nothing is written into
site-packages. ``OWTA``, ``DetRe`` and ``AssA`` are arrays over the 19 IoU
thresholds 0.05..0.95; we report their means (the paper's OWTA, D.Re, A.Acc).

Notes on TrackEval's TAO_OW behaviour that matter when reading the numbers:
every predicted box is class-agnostic (TrackEval maps it to class id 1), at most
``max_detections`` boxes per image count (highest scores first; 0 = unlimited;
TAO-OW's paper protocol uses 300, OWTB used 1000), unmatched predictions in frames
without GT of the subset are ignored, and false positives do not lower OWTA.
No numpy-2 workaround is needed with trackeval 1.3.0 + numpy 2.x.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from effowt.errors import DataError
from effowt.fileio import atomic_write_json, atomic_write_text
from effowt.tracking.writers import MAX_BOX_PX

SUBSETS = ("known", "unknown", "all")
METRICS = ("OWTA", "DetRe", "AssA")

_GT_KEYS = {
    "videos": ("id", "name", "neg_category_ids", "not_exhaustive_category_ids"),
    "images": ("id", "video_id", "frame_index"),
    "annotations": ("id", "image_id", "video_id", "track_id", "bbox", "category_id"),
    "tracks": ("id", "video_id", "category_id"),
    "categories": ("id", "name"),
}
_PRED_KEYS = ("image_id", "track_id", "bbox", "score")


def load_json(obj: Any, what: str) -> tuple[Any, str]:
    """Return (parsed json, name for messages) for a path or an already-parsed object."""
    if isinstance(obj, (dict, list)):
        return obj, f"<{what} object>"
    path = Path(obj)
    if not path.is_file():
        raise DataError(f"{path}: {what} file not found")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f), str(path)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not a valid json file ({err})") from None


def _check_bbox(bbox: Any, where: str) -> None:
    """Refuse NaN / inf and absurd magnitudes alike (1e308 is finite, but its area is not)."""
    ok = isinstance(bbox, (list, tuple)) and len(bbox) == 4
    ok = ok and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                    and abs(v) <= MAX_BOX_PX for v in bbox)
    if not ok or bbox[2] < 0 or bbox[3] < 0:
        raise DataError(f"{where}: bbox must be 4 finite numbers [x, y, w, h] with w, h >= 0 and "
                        f"|values| <= {MAX_BOX_PX:g} px, got {bbox!r}")


def validate_gt(gt: Any, name: str) -> dict[str, Any]:
    """Check a TAO-format ground-truth dict has what TrackEval's TAO_OW reads.

    Returns a shallow copy with ``info``/``licenses`` filled in when absent (they
    carry no information but TrackEval indexes them). Raises DataError otherwise.
    """
    if not isinstance(gt, dict):
        raise DataError(f"{name}: ground truth must be a TAO json object, got {type(gt).__name__}")
    for key, fields in _GT_KEYS.items():
        items = gt.get(key)
        if not isinstance(items, list):
            raise DataError(f"{name}: ground truth has no {key!r} list (TAO format needs "
                            f"{', '.join(_GT_KEYS)})")
        for i, item in enumerate(items):
            missing = [f for f in fields if not isinstance(item, dict) or f not in item]
            if missing:
                raise DataError(f"{name}: {key}[{i}] lacks field(s) {', '.join(missing)}")
    if not gt["videos"] or not gt["images"]:
        raise DataError(f"{name}: ground truth has no videos or no images")
    video_ids = {v["id"] for v in gt["videos"]}
    for img in gt["images"]:
        if img["video_id"] not in video_ids:
            raise DataError(f"{name}: image {img['id']} refers to unknown video {img['video_id']}")
    image_ids = {img["id"] for img in gt["images"]}
    for i, ann in enumerate(gt["annotations"]):
        if ann["image_id"] not in image_ids:
            raise DataError(f"{name}: annotations[{i}] refers to unknown image {ann['image_id']}")
        _check_bbox(ann["bbox"], f"{name}: annotations[{i}]")
    out = dict(gt)
    out.setdefault("info", {})
    out.setdefault("licenses", [])
    return out


def validate_predictions(pred: Any, gt: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """Check a flat TAO results list against its ground truth.

    Every record needs ``image_id``, ``track_id``, ``bbox`` [x, y, w, h] and ``score``;
    ``video_id`` (filled from the GT image) and ``category_id`` (filled with 1: the
    evaluation is class-agnostic) are optional. Image ids must exist in the GT and
    a track id may appear at most once per image. An empty list is valid (a model that
    detects nothing scores 0) and warns. Returns the completed records.
    """
    if not isinstance(pred, list):
        raise DataError(f"{name}: results must be a flat json list of boxes, "
                        f"got {type(pred).__name__}")
    if not pred:
        warnings.warn(f"{name}: results are empty (no boxes): every metric is 0", UserWarning,
                      stacklevel=3)
    image_video = {img["id"]: img["video_id"] for img in gt["images"]}
    out = []
    unknown_images: set[Any] = set()
    seen: set[tuple[Any, Any]] = set()
    for i, rec in enumerate(pred):
        missing = [f for f in _PRED_KEYS if not isinstance(rec, dict) or f not in rec]
        if missing:
            raise DataError(f"{name}: record {i} lacks field(s) {', '.join(missing)} "
                            f"(needs {', '.join(_PRED_KEYS)})")
        where = f"{name}: record {i}"
        _check_bbox(rec["bbox"], where)
        score = rec["score"]
        if not isinstance(score, (int, float)) or isinstance(score, bool) or not math.isfinite(score):
            raise DataError(f"{where}: score must be a finite number, got {score!r}")
        if not isinstance(rec["track_id"], int) or isinstance(rec["track_id"], bool):
            raise DataError(f"{where}: track_id must be an integer, got {rec['track_id']!r}")
        image_id = rec["image_id"]
        if image_id not in image_video:
            unknown_images.add(image_id)
            continue
        video_id = rec.get("video_id", image_video[image_id])
        if video_id != image_video[image_id]:
            raise DataError(f"{where}: image {image_id} belongs to video {image_video[image_id]} "
                            f"in the ground truth, not {video_id}")
        key = (image_id, rec["track_id"])
        if key in seen:
            raise DataError(f"{where}: track id {rec['track_id']} appears twice in image {image_id}")
        seen.add(key)
        out.append({**rec, "video_id": video_id, "category_id": rec.get("category_id", 1)})
    if unknown_images:
        example = ", ".join(str(x) for x in sorted(unknown_images, key=str)[:5])
        if not out:
            raise DataError(f"{name}: results json for a different ground truth: none of its "
                            f"image ids are in the ground truth (e.g. {example})")
        raise DataError(f"{name}: {len(unknown_images)} image id(s) are not in the ground truth "
                        f"(e.g. {example}); results json for a different ground truth?")
    return out


def _run_trackeval(root: Path, subset: str, max_detections: int) -> tuple[dict[str, float], int]:
    """One TrackEval run; returns (mean OWTA/DetRe/AssA, number of GT boxes in the subset)."""
    import trackeval  # imported lazily: it is slow to import and only needed here

    eval_cfg = {
        "USE_PARALLEL": False, "BREAK_ON_ERROR": True, "RETURN_ON_ERROR": False,
        "LOG_ON_ERROR": None, "PRINT_RESULTS": False, "PRINT_ONLY_COMBINED": False,
        "PRINT_CONFIG": False, "TIME_PROGRESS": False, "DISPLAY_LESS_PROGRESS": True,
        "OUTPUT_SUMMARY": False, "OUTPUT_EMPTY_CLASSES": False, "OUTPUT_DETAILED": False,
        "PLOT_CURVES": False,
    }
    data_cfg = {
        "GT_FOLDER": str(root / "gt"), "TRACKERS_FOLDER": str(root / "trackers"),
        "OUTPUT_FOLDER": str(root / "out"), "TRACKERS_TO_EVAL": ["effowt"],
        "PRINT_CONFIG": False, "MAX_DETECTIONS": max_detections, "SUBSET": subset,
    }
    with contextlib.redirect_stdout(io.StringIO()):  # TrackEval prints progress unconditionally
        evaluator = trackeval.Evaluator(eval_cfg)
        dataset = trackeval.datasets.TAO_OW(data_cfg)
        results, _ = evaluator.evaluate([dataset], [trackeval.metrics.HOTA()])
    combined = results["TAO_OW"]["effowt"]["COMBINED_SEQ"]["object"]
    hota = combined["HOTA"]
    return {m: float(np.mean(hota[m])) for m in METRICS}, int(combined["Count"]["GT_Dets"])


def evaluate_owta(gt_json: str | os.PathLike | dict, pred_json: str | os.PathLike | list,
                  max_detections: int = 300) -> dict[str, dict[str, float]]:
    """Score tracking results with TrackEval's TAO_OW + HOTA; see :func:`owta_report`."""
    return owta_report(gt_json, pred_json, max_detections)[0]


def owta_report(gt_json: str | os.PathLike | dict, pred_json: str | os.PathLike | list,
                max_detections: int = 300) -> tuple[dict[str, dict[str, float]], dict[str, int]]:
    """Score tracking results with TrackEval's TAO_OW + HOTA.

    Args:
        gt_json: TAO-format ground truth (path or parsed dict): ``videos`` (with
            ``neg_category_ids``, ``not_exhaustive_category_ids``), ``images`` (with
            ``video_id``, ``frame_index``), ``annotations``, ``tracks``, ``categories``.
        pred_json: results (path or parsed list): flat list of ``{video_id, image_id,
            track_id, bbox [x, y, w, h], score, category_id}``.
        max_detections: boxes per image that count (highest score first; 0 = all).

    Returns:
        ``({"known"|"unknown"|"all": {"OWTA", "DetRe", "AssA"}}, {subset: GT boxes})``:
        each metric is the mean over the 19 IoU thresholds, in [0, 1]; a subset without
        GT boxes scores 0 in TrackEval, the counts tell that case apart.
    """
    if max_detections < 0:
        raise ValueError(f"max_detections must be >= 0, got {max_detections}")
    gt, gt_name = load_json(gt_json, "ground truth")
    gt = validate_gt(gt, gt_name)
    pred, pred_name = load_json(pred_json, "results")
    pred = validate_predictions(pred, gt, pred_name)
    with tempfile.TemporaryDirectory(prefix="effowt-eval-") as tmp:
        root = Path(tmp)
        (root / "gt").mkdir()
        (root / "trackers" / "effowt" / "data").mkdir(parents=True)
        (root / "out").mkdir()
        (root / "gt" / "gt.json").write_text(json.dumps(gt))
        (root / "trackers" / "effowt" / "data" / "results.json").write_text(json.dumps(pred))
        runs = {subset: _run_trackeval(root, subset, max_detections) for subset in SUBSETS}
    return {s: r[0] for s, r in runs.items()}, {s: r[1] for s, r in runs.items()}


def format_table(metrics: dict[str, dict[str, float]], gt_dets: dict[str, int]) -> str:
    """Markdown table subset x OWTA / D.Re / A.Acc in percent, with the GT box count."""
    lines = ["| subset | OWTA | D.Re | A.Acc | GT boxes |", "|---|---:|---:|---:|---:|"]
    for subset in SUBSETS:
        m = metrics[subset]
        lines.append(f"| {subset} | {100 * m['OWTA']:.1f} | {100 * m['DetRe']:.1f} "
                     f"| {100 * m['AssA']:.1f} | {gt_dets[subset]} |")
    return "\n".join(lines)


def write_report(metrics: dict[str, dict[str, float]], gt_dets: dict[str, int],
                 out_dir: str | os.PathLike, note: str = "",
                 label_accuracy: dict[str, float | None] | None = None) -> None:
    """Write ``metrics.json`` (subset -> OWTA/DetRe/AssA in [0, 1], plus
    ``label_accuracy`` {known, unknown} when given) and ``metrics.md`` (percent table
    plus ``note``) into out_dir."""
    out = Path(out_dir)
    report: dict[str, Any] = {s: {m: metrics[s][m] for m in METRICS} for s in SUBSETS}
    if label_accuracy is not None:
        report["label_accuracy"] = label_accuracy
    atomic_write_json(out / "metrics.json", report)
    text = "# TAO-OW metrics (TrackEval TAO_OW, HOTA)\n\n" + format_table(metrics, gt_dets) + "\n"
    if label_accuracy is not None:
        from effowt.evaluation.labels import format_label_accuracy

        text += "\n" + format_label_accuracy(label_accuracy) + "\n"
    if note:
        text += "\n" + note + "\n"
    atomic_write_text(out / "metrics.md", text)
