"""``effowt synth``: generate a synthetic open-world tracking world (MiniOWT, or the
cut-out world of real objects: ``--world cutout --split far|near``)."""

from __future__ import annotations

import argparse
import time

from effowt.errors import ConfigError
from effowt.fileio import prepare_output_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``effowt synth``."""
    parser.add_argument("--out", required=True,
                        help="output folder (train/, pretrain/, val/); an older world there is replaced")
    parser.add_argument("--world", choices=["mini", "cutout"], default="mini",
                        help="mini: MiniOWT's shapes; cutout: real cut-out objects from Debian's "
                             "tuxpaint-stamps-default and openclipart-png (default: %(default)s)")
    parser.add_argument("--split", choices=["far", "near"], default="far",
                        help="cutout only: which categories are known (default: %(default)s)")
    parser.add_argument("--train-annotates", choices=["known", "all"], default="known",
                        help="cutout only: annotate the split's known categories in train/ (the open-world "
                             "protocol) or every object (a model that learns every category; default: %(default)s)")
    parser.add_argument("--stamps", default=None, help="cutout only: Tux Paint stamps folder "
                        "(default: /usr/share/tuxpaint/stamps)")
    parser.add_argument("--clipart", default=None, help="cutout only: Open Clip Art PNG folder "
                        "(default: /usr/share/openclipart/png)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed: identical files)")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels")
    parser.add_argument("--train-images", type=int, default=1000, help="COCO train images (known classes)")
    parser.add_argument("--pretrain-images", type=int, default=1000,
                        help="COCO images with all classes, for the tiny VLM")
    parser.add_argument("--val-videos", type=int, default=8, help="TAO-format validation videos")
    parser.add_argument("--frames", type=int, default=48, help="frames per validation video")


def run(args: argparse.Namespace) -> int:
    """Generate the world and print where it went and how long it took."""
    from effowt.data.miniowt.generator import LIMITS

    values = dict(seed=args.seed, size=args.size, train_images=args.train_images,
                  pretrain_images=args.pretrain_images, val_videos=args.val_videos, frames=args.frames)
    for arg, value in values.items():  # bounded up front: a huge --size would fill memory, not fail
        low, high = LIMITS[arg]
        if not low <= value <= high:
            raise ConfigError(f"--{arg.replace('_', '-')} {value}: must be in [{low}, {high}]")
    prepare_output_dir(args.out)  # an empty --out is an error, not the current folder
    start = time.perf_counter()
    try:
        if args.world == "cutout":
            from effowt.data.cutout import generate_cutout_world

            paths = generate_cutout_world(
                args.out, split=args.split, seed=args.seed, size=args.size, train_images=args.train_images,
                val_videos=args.val_videos, frames=args.frames, stamps_root=args.stamps, clipart_root=args.clipart,
                train_annotates=args.train_annotates,
            )
            args.pretrain_images = 0
        else:
            from effowt.data.miniowt import generate_miniowt

            paths = generate_miniowt(args.out, **values)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    elapsed_s = time.perf_counter() - start
    count = args.train_images + args.pretrain_images + args.val_videos * args.frames
    for key, path in paths.as_dict().items():
        print(f"{key:<16}{path}")
    per_1000 = f", {elapsed_s / count * 1000:.1f} s per 1000 images" if count else ""
    print(f"generated {count} images in {elapsed_s:.1f} s{per_1000}")
    return 0
