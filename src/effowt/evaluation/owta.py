"""OWTA / D.Re / A.Acc on TAO-OW with the official TrackEval code.

This module only wraps ``trackeval.datasets.TAO_OW`` + ``trackeval.metrics.HOTA``
(the metric is not re-implemented). It validates both json files first with the
TAO schema of :mod:`effowt.data.tao`, so a bad input gives one clear
:class:`~effowt.errors.DataError` instead of a KeyError deep inside TrackEval,
then lays the files out the way TrackEval expects in a temporary folder::

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
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

from effowt.data.tao import EVAL_FIELDS, validate_gt, validate_results
from effowt.errors import DataError
from effowt.fileio import atomic_write_json, atomic_write_text, read_json

SUBSETS = ("known", "unknown", "all")
METRICS = ("OWTA", "DetRe", "AssA")


def load_json(obj: Any, what: str) -> tuple[Any, str]:
    """Return (parsed json, name for messages) for a path or an already-parsed object."""
    if isinstance(obj, (dict, list)):
        return obj, f"<{what} object>"
    return read_json(obj, what), str(obj)


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
    return {m: float(hota[m].mean()) for m in METRICS}, int(combined["Count"]["GT_Dets"])


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
    validate_gt(gt, gt_name, extra=EVAL_FIELDS)
    if not gt["videos"] or not gt["images"]:
        raise DataError(f"{gt_name}: ground truth has no videos or no images")
    gt = {"info": {}, "licenses": [], **gt}  # TrackEval indexes them; they carry nothing
    pred, pred_name = load_json(pred_json, "results")
    if isinstance(pred, list) and not pred:  # a model that detects nothing is a valid, bad model
        warnings.warn(f"{pred_name}: results are empty (no boxes): every metric is 0", UserWarning, stacklevel=2)
    pred = validate_results(pred, pred_name, gt)
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


def write_metrics(metrics: dict[str, dict[str, float]], gt_dets: dict[str, int],
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
        from effowt.evaluation.label_accuracy import format_label_accuracy

        text += "\n" + format_label_accuracy(label_accuracy) + "\n"
    if note:
        text += "\n" + note + "\n"
    atomic_write_text(out / "metrics.md", text)
