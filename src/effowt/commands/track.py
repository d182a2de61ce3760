"""``effowt track``: track a video file, a frame folder, every video of a TAO split, or
a live stream (a URL, ``-`` for standard input, a capture device) as it arrives.

Imports nothing heavy at module level: ``effowt track --help`` and the argument, path,
config and lock errors answer before torch is imported (see docs/architecture.md).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from effowt.commands import int_at_least, positive_float
from effowt.config import PRECISION_NAMES
from effowt.distributed import env_rank, env_world_size, launched
from effowt.errors import ConfigError, DataError

if TYPE_CHECKING:
    from effowt.data.sources import StreamSource

WHAT_INSTEAD = ("for real footage pass --weights RUN (a run trained with `effowt train` on COCO with real "
                "VLM weights) or --detections FILE (boxes from your own detector)")
SHIPPED_NOTE = ("note: {source} is not a MiniOWT source, and effowt-mini knows only MiniOWT "
                "(effowt's synthetic world of coloured shapes): expect few or no boxes; the default model "
                "(effowt-cutout) or " + WHAT_INSTEAD)
NO_BOXES_NOTE = ("note: the run wrote no boxes at all; a lower tracker.det_thresh= or a larger --image-size may "
                 "help; else " + WHAT_INSTEAD)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", default=None,
                        help="run folder from `effowt train` (default: the shipped checkpoint)")
    parser.add_argument("--source", required=True,
                        help="video file, folder of frames (or of frame folders), TAO json split, or a "
                             "stream: rtsp:// rtmp:// http(s):// URL, - (standard input), /dev/videoN, "
                             "or FORMAT:DEVICE (an FFmpeg input device, e.g. v4l2:/dev/video0)")
    parser.add_argument("--out", required=True,
                        help="output folder: results.json, mot/, partial/, speed.json, render/")
    parser.add_argument("--resume", action="store_true",
                        help="keep the videos an interrupted run into --out finished, track the rest")
    parser.add_argument("--render", action="store_true", help="also write annotated mp4 videos")
    parser.add_argument("--report", action="store_true",
                        help="also write OUT/report.html: videos, track timelines, crops (see `effowt report`)")
    parser.add_argument("--max-dets", type=int_at_least(1), default=None,
                        help="boxes per frame: the run's tracker.max_dets setting, spelt this one way here "
                             "(default: the run's value)")
    parser.add_argument("--frames-root", default=None,
                        help="folder TAO frame paths are relative to (default: the json's folder)")
    parser.add_argument("--workers", type=int_at_least(1), default=1,
                        help="processes to shard the videos across (each loads the model)")
    parser.add_argument("--device", default="cpu",
                        help="torch device, e.g. cpu or cuda:0 (under torchrun, cuda means cuda:LOCAL_RANK)")
    parser.add_argument("--batch-frames", type=int_at_least(1), default=1,
                        help="consecutive frames per model batch (the same tracks as 1; faster)")
    parser.add_argument("--threads", type=int_at_least(1), default=None,
                        help="torch CPU threads per tracking process (default: 1 for a model under 20 M "
                             "parameters, e.g. the shipped one; else the cores this process may use, shared "
                             "among --workers)")
    parser.add_argument("--image-size", type=int_at_least(32), default=None,
                        help="model input's long side in px (default: the run's model.image_size; larger "
                             "finds smaller objects, slower)")
    parser.add_argument("--no-labels", action="store_true",
                        help="do not label tracks with the run's default vocabulary (vocabulary.txt in the run)")
    parser.add_argument("--precision", choices=list(PRECISION_NAMES), default="fp32",
                        help="precision of the frozen backbone and the side network (heads stay fp32)")
    parser.add_argument("--profile", action="store_true",
                        help="time backbone, neck and heads apart in speed.json (synchronises CUDA per stage)")
    parser.add_argument("--detections", default=None, metavar="FILE",
                        help="boxes from your own detector instead of the model's: a COCO-results json "
                             "([{image_id, bbox [x,y,w,h], score[, category_id]}], image ids of the source) "
                             "or a folder of MOTChallenge det files named after the videos")
    vocab = parser.add_mutually_exclusive_group()
    vocab.add_argument("--texts", default=None, metavar="'A; B'",
                       help="label every track with the best-matching of these texts (';'-separated), "
                            "through the VLM's text tower")
    vocab.add_argument("--vocab", default=None, metavar="FILE", help="like --texts, one text per line")
    parser.add_argument("--prompt", default=None,
                        help="template each text is put in, {} = the text (default: 'a photo of {}')")
    stream = parser.add_argument_group("streams (--source a URL, -, or a device)")
    stream.add_argument("--max-frames", type=int_at_least(1), default=None,
                        help="stop the stream after this many tracked frames")
    stream.add_argument("--duration", type=positive_float, default=None, metavar="S",
                        help="stop the stream after S seconds of tracking")
    stream.add_argument("--realtime", action="store_true",
                        help="read the stream at its frame rate and drop the frames tracking is too slow "
                             "for, instead of falling behind (the count is reported)")
    stream.add_argument("--stream-timeout", type=positive_float, default=10.0, metavar="S",
                        help="give up on a stream that sends nothing for S seconds (default: 10)")
    parser.add_argument("overrides", nargs="*", metavar="tracker.KEY=VALUE",
                        help="tracker settings after the options, e.g. tracker.det_thresh=0.2 "
                             "tracker.max_lost=20 (checked like train's; recorded in OUT/tracker.json)")


def run(args: argparse.Namespace) -> int:
    from effowt.config import parse_tracker_overrides
    from effowt.data.sources import is_stream
    from effowt.lockfile import refuse_if_held
    from effowt.tracking.vocabulary import DEFAULT_PROMPT, check_prompt, parse_texts, read_vocabulary

    # cheap checks first, before torch is imported: arguments, paths, the folder lock
    overrides = parse_tracker_overrides(args.overrides)
    if "max_dets" in overrides:  # one way per setting: the cap is --max-dets
        raise ConfigError(f"tracker.max_dets={overrides['max_dets']}: set the cap with --max-dets "
                          f"{overrides['max_dets']}")
    texts = parse_texts(args.texts) if args.texts is not None else \
        read_vocabulary(args.vocab) if args.vocab is not None else None
    prompt = check_prompt(DEFAULT_PROMPT if args.prompt is None else args.prompt)
    if not is_stream(args.source) and not Path(args.source).exists():
        raise DataError(f"{Path(args.source)}: no such file or folder")  # open_source's line, sooner
    if env_rank() == 0:
        refuse_if_held(args.out)
    if texts is None and not (args.no_labels or args.detections):
        from effowt.tracking.labels import default_vocabulary

        texts = default_vocabulary(args.weights)

    with contextlib.ExitStack() as held:
        stream = held.enter_context(open_stream(args)) if is_stream(args.source) else None
        if stream is None:
            for option in ("max_frames", "duration", "realtime"):
                if getattr(args, option):
                    raise ConfigError(f"--{option.replace('_', '-')} applies to streams only (--source a URL, "
                                      f"-, or a capture device), not to {args.source}")
        return _track(args, stream, overrides, texts, prompt)


def open_stream(args: argparse.Namespace) -> StreamSource:
    """The stream ``--source`` names, opened (DataError naming it when it cannot be)."""
    from effowt.data.sources import StreamSource

    if args.resume:
        raise ConfigError(f"--resume: a stream cannot be resumed ({args.source}); track it into a new --out")
    if launched() and env_world_size() > 1:
        raise ConfigError(f"{args.source}: a stream is tracked by one process; run it without torchrun")
    return StreamSource(args.source, timeout_s=args.stream_timeout, max_frames=args.max_frames,
                        duration_s=args.duration, realtime=args.realtime)


def _track(args: argparse.Namespace, stream: StreamSource | None, overrides: dict, texts: list[str] | None,
           prompt: str) -> int:
    from effowt.data.miniowt import is_miniowt_source
    from effowt.tracking.pipeline import track_source

    if args.weights == "effowt-mini" and args.detections is None and not is_miniowt_source(args.source) \
            and env_rank() == 0:
        print(SHIPPED_NOTE.format(source=args.source))
    report = track_source(args.source if stream is None else stream, args.out, run_dir=args.weights,
                          device=args.device, render=args.render, max_dets=args.max_dets,
                          frames_root=args.frames_root, workers=args.workers, resume=args.resume,
                          detections=args.detections, tracker_overrides=overrides, texts=texts, prompt=prompt,
                          batch_frames=args.batch_frames, precision=args.precision, profile=args.profile,
                          threads=args.threads, image_size=args.image_size)
    if report.rank:  # torchrun: rank 0 reports for the whole run
        return 1 if report.failed else 0
    if report.resumed:
        print(f"resumed: kept {report.resumed} video(s) the earlier run finished")
    for video in report.failed:
        print(f"effowt track: error: video {video.name}: {video.error}", file=sys.stderr)
    if not report.written:
        print(f"effowt track: error: no video finished; {Path(args.out) / 'results.json'}, videos.json and "
              "mot/ were left as they were", file=sys.stderr)
        return 1
    done = [v for v in report.videos if v.ok]
    if any(v.synthetic_ids for v in done):
        print("note: the source has no TAO ids; video_id / image_id in results.json are "
              "synthetic (see videos.json)")
    ms = report.speed["per_frame_ms"]
    print(f"tracked {len(done)}/{len(report.videos)} video(s), {report.speed['frames']} frames, "
          f"{report.boxes} boxes -> {Path(args.out) / 'results.json'}")
    if report.boxes == 0:
        print(NO_BOXES_NOTE)
    print("per-frame ms: " + ", ".join(f"{k} {v:.1f}" for k, v in ms.items())
          + f"  ({report.speed['frames_per_s']:.1f} frames/s overall)")
    failed = _stream_summary(stream, args.out) if stream is not None else 0
    if args.report:
        from effowt.report import write_report

        print(f"wrote {write_report(args.out)}")
    return 1 if report.failed or failed else 0


def _stream_summary(stream: StreamSource, out: str) -> int:
    """Say how the stream ended and what it dropped; 1 when it stalled or broke off
    (its frames tracked before are merged all the same), else 0."""
    if stream.stopped_by:
        print(f"stream {stream.url}: stopped by {stream.stopped_by} after {stream.frames} frame(s)")
    if stream.realtime:
        print(f"stream {stream.url}: --realtime dropped {stream.dropped} frame(s) tracking was too slow for")
    if stream.skipped_packets:
        print(f"stream {stream.url}: skipped {stream.skipped_packets} undecodable packet(s)")
    if stream.error:
        print(f"effowt track: error: {stream.error}; what was tracked is in {Path(out) / 'results.json'}",
              file=sys.stderr)
        return 1
    return 0
