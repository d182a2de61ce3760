"""``effowt demo``: the whole product offline, in minutes, on a CPU.

1. **Real footage**: the first :data:`REAL_FRAMES` frames of OpenCV's ``vtest.avi``
   (Debian ``opencv-doc``: pedestrians on a campus, Apache-2.0 / BSD-3-Clause), tracked
   by the shipped model at :data:`REAL_IMAGE_SIZE` px with its default vocabulary:
   ``OUT/real/`` (results, annotated video, contact sheet, ``report.html``).
2. **A held-out clip of the model's world**, a seed it never trained on (the cut-out
   world's ``far`` split for the cut-out model, MiniOWT for ``effowt-mini``): tracked,
   scored with TrackEval's TAO_OW (OWTA for known and unknown objects, label accuracy),
   ``OUT/`` (results, renders, ``metrics.json``, ``report.html``).

A missing Debian package skips its part with one line (``make demo`` installs them
where it can).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from effowt.commands import int_at_least
from effowt.fileio import prepare_output_dir

MINI_WORLD = dict(seed=7, size=128, train_images=0, pretrain_images=0, val_videos=2, frames=48)
CUTOUT_WORLD = dict(split="far", seed=7, size=160, train_images=0, val_videos=2, frames=40)
VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
REAL_FRAMES = 100
REAL_IMAGE_SIZE = 480


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="demo-output", help="output folder (default: %(default)s)")
    parser.add_argument("--weights", default=None,
                        help="run folder or shipped name (default: the shipped checkpoint, effowt-cutout)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: %(default)s)")
    parser.add_argument("--threads", type=int_at_least(1), default=None,
                        help="torch CPU threads per process (default: 1 for a model under 20 M parameters, "
                             "e.g. the shipped ones; else the cores this process may use)")


def real_clip(out: Path, frames: int = REAL_FRAMES) -> Path | None:
    """The first ``frames`` frames of ``vtest.avi`` at half size as an mp4 under ``out``,
    or None (one line printed) when ``opencv-doc`` is not installed."""
    import av
    import numpy as np
    from PIL import Image

    from effowt.data.miniowt import write_video

    if not VTEST.is_file():
        print(f"skipped the real footage: {VTEST} not found (sudo apt-get install opencv-doc)")
        return None
    images = []
    with av.open(str(VTEST)) as container:
        for frame in container.decode(video=0):
            img = frame.to_image()
            images.append(np.asarray(img.resize((img.width // 2, img.height // 2), Image.BILINEAR)))
            if len(images) == frames:
                break
    path = out / "vtest.mp4"
    write_video(path, images)
    return path


def run(args: argparse.Namespace) -> int:
    from effowt.config import load_config
    from effowt.errors import DataError
    from effowt.evaluation.label_accuracy import format_label_accuracy, label_accuracy
    from effowt.evaluation.owta import format_table, load_json, owta_report, write_metrics
    from effowt.report import write_report
    from effowt.runs import CONFIG_FILE, resolve_run_dir
    from effowt.tracking.labels import default_vocabulary
    from effowt.tracking.pipeline import track_source

    start = time.perf_counter()
    out = prepare_output_dir(args.out)  # an empty --out is an error, not the current folder
    run_dir = resolve_run_dir(args.weights)
    texts = default_vocabulary(args.weights)
    cutout = "LiT" in load_config(str(run_dir / CONFIG_FILE)).model.backbone.name
    print(f"[1/3] real footage: tracking {REAL_FRAMES} frames of {VTEST.name} with {run_dir.name} "
          f"at {REAL_IMAGE_SIZE} px" + (f", labels from its {len(texts)}-text vocabulary" if texts else ""))
    clip = real_clip(out / "real-clip")
    if clip is not None:
        real = track_source(clip, out / "real", run_dir=args.weights, device=args.device, render=True,
                            texts=texts, image_size=REAL_IMAGE_SIZE, threads=args.threads)
        if real.failed:
            return 1
        write_report(out / "real")
    world = out / ("cutout-clip" if cutout else "miniowt-clip")
    settings = CUTOUT_WORLD if cutout else MINI_WORLD
    print(f"[2/3] generating a held-out {'cut-out' if cutout else 'MiniOWT'} clip in {world} "
          f"({settings['val_videos']} videos x {settings['frames']} frames, seed {settings['seed']}) and tracking it")
    try:
        if cutout:
            from effowt.data.cutout import generate_cutout_world

            paths = generate_cutout_world(world, **settings)
        else:
            from effowt.data.miniowt import generate_miniowt

            paths = generate_miniowt(world, **settings)
    except DataError as err:  # a missing Debian package: say what is skipped, keep the rest
        print(f"skipped the scored clip: {err}")
        return 0
    report = track_source(paths.val_json, out, run_dir=args.weights, device=args.device, render=True, texts=texts,
                          threads=args.threads)
    if report.failed:
        return 1
    print("[3/3] scoring with TrackEval TAO_OW (HOTA)")
    metrics, gt_dets = owta_report(paths.val_json, out / "results.json")
    labels = label_accuracy(load_json(paths.val_json, "ground truth")[0], load_json(out / "results.json", "results")[0])
    note = f"Ground truth: {paths.val_json}; results: {out / 'results.json'}; means over the 19 IoU thresholds."
    write_metrics(metrics, gt_dets, out, note, label_accuracy=labels)
    print(format_table(metrics, gt_dets))
    if labels is not None:
        print(format_label_accuracy(labels))
    write_report(out)
    print(f"\nwrote {out / 'real'}/ (the real footage: results.json, render/, report.html) and "
          f"{out / 'results.json'}, "
          f"render/, metrics.json, metrics.md, report.html (open them in a browser) "
          f"in {time.perf_counter() - start:.0f} s")
    return 0
