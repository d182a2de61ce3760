"""``effowt demo``: the whole product offline, in minutes, on a CPU.

Generates a held-out MiniOWT clip (a seed the shipped checkpoint never trained
on), tracks it with the shipped checkpoint (side network on the shipped tiny VLM),
writes the TAO results json, MOT txt, annotated videos (512 px) with their contact
sheets (PNG), scores the tracks with TrackEval's TAO_OW OWTA for known and unknown
objects, and writes the results page ``report.html`` (:mod:`effowt.report`).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

DEMO_WORLD = dict(seed=7, size=128, train_images=0, pretrain_images=0, val_videos=2, frames=48)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="demo-output", help="output folder")
    parser.add_argument("--weights", default=None, help="run folder (default: the shipped checkpoint)")
    parser.add_argument("--device", default="cpu")


def run(args: argparse.Namespace) -> int:
    from effowt.data.miniowt import generate_miniowt
    from effowt.evaluation.owta import format_table, owta_report, write_report
    from effowt.report import write_report as write_results_page
    from effowt.tracking.pipeline import track_source

    start = time.perf_counter()
    out = Path(args.out)
    world = out / "miniowt-clip"
    print(f"[1/3] generating a held-out MiniOWT clip in {world} "
          f"({DEMO_WORLD['val_videos']} videos x {DEMO_WORLD['frames']} frames, seed {DEMO_WORLD['seed']})")
    paths = generate_miniowt(world, **DEMO_WORLD)
    print("[2/3] tracking it with " + (args.weights or "the shipped checkpoint (effowt/assets/effowt-mini)"))
    report = track_source(paths.val_json, out, run_dir=args.weights, device=args.device, render=True)
    if report.failed:
        return 1
    print("[3/3] scoring with TrackEval TAO_OW (HOTA)")
    metrics, gt_dets = owta_report(paths.val_json, out / "results.json")
    note = f"Ground truth: {paths.val_json}; results: {out / 'results.json'}; means over the 19 IoU thresholds."
    write_report(metrics, gt_dets, out, note)
    print(format_table(metrics, gt_dets))
    write_results_page(out)
    print(f"\nwrote {out}/results.json, mot/, render/ (annotated videos and contact sheets *.png), "
          f"metrics.json, metrics.md, report.html (open it in a browser) "
          f"in {time.perf_counter() - start:.0f} s")
    return 0
