"""``effowt report OUT``: a results page (``OUT/report.html``) for a tracking output folder.

The page plays the rendered videos, draws a timeline of track lifetimes (one row per
track, in the render's colours), shows crops of each track and the metrics and speed
figures the folder holds; see :mod:`effowt.report.page`. No network is needed to
write or to open it.
"""

from __future__ import annotations

import argparse
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", help="output folder of `effowt track` (or `effowt demo`)")
    parser.add_argument("--no-crops", action="store_true",
                        help="skip the crops (they need the source the folder was tracked from)")


def run(args: argparse.Namespace) -> int:
    from effowt.report import write_report
    from effowt.report.page import report_summary

    start = time.perf_counter()
    page = write_report(args.out, crops=not args.no_crops)
    print(report_summary(page, start))
    return 0
