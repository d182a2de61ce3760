"""``effowt eval``: OWTA / D.Re / A.Acc for known, unknown and all objects (TrackEval TAO_OW)."""

from __future__ import annotations

import argparse

from effowt.commands import int_at_least
from effowt.fileio import prepare_output_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gt", required=True, help="TAO-format ground-truth json")
    parser.add_argument("--pred", required=True, help="TAO-format results json (flat list)")
    parser.add_argument("--out", default=None,
                        help="folder for metrics.json and metrics.md (default: print only)")
    parser.add_argument("--max-detections", type=int_at_least(0), default=300,
                        help="boxes per image that count, highest scores first (0 = all; "
                             "TAO-OW uses 300, OWTB used 1000)")


def run(args: argparse.Namespace) -> int:
    if args.out:
        prepare_output_dir(args.out)  # before scoring, so a bad --out fails fast and loses nothing
    from effowt.evaluation.label_accuracy import format_label_accuracy, label_accuracy
    from effowt.evaluation.owta import format_table, load_json, owta_report, write_metrics

    metrics, gt_dets = owta_report(args.gt, args.pred, max_detections=args.max_detections)
    labels = label_accuracy(load_json(args.gt, "ground truth")[0], load_json(args.pred, "results")[0])
    limit = (f"at most {args.max_detections} boxes per image" if args.max_detections
             else "every box of each image")
    note = (f"Ground truth: {args.gt}; results: {args.pred}; {limit}; "
            f"values are means over the 19 IoU thresholds of HOTA.")
    print(format_table(metrics, gt_dets))
    if labels is not None:
        print(format_label_accuracy(labels))
    print(note)
    if args.out:
        write_metrics(metrics, gt_dets, args.out, note, label_accuracy=labels)
    return 0
