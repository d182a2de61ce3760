"""Tracking whole sources: a video file, a frame folder or a TAO split.

Output folder layout (``out_dir``)::

    results.json          TAO results of every video that finished (flat list)
    videos.json           per video: name, video_id, frames, ok / error, synthetic ids
    speed.json            per-frame milliseconds per stage (see :func:`speed_summary`)
    partial/<video>.json  one video's results, written as soon as it finishes
    mot/<video>.txt       MOT-challenge txt per video (per-video track ids)
    render/<video>.mp4    annotated video (``render=True``)

A video that fails (unreadable frame, model error, ...) is reported in
``videos.json`` and by :class:`TrackReport`; the other videos go on and keep
their results. Videos without TAO ids (video files, frame folders) get
synthetic ids: ``video_id`` = position in the source + 1 and ``image_id`` =
``video_id * 1_000_000 + frame index + 1``. Track ids in ``results.json`` are
made unique over the whole source by offsetting each video's ids by the number
of ids the videos before it used (the TAO convention); ``mot/`` and
``partial/`` keep each video's own ids, starting at 1.

With ``workers > 1``, videos are dealt round-robin to worker processes (spawned,
each loading the model itself); per-frame times then add up CPU/GPU time of all
workers, and ``wall_s`` is the elapsed time.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import re
import time
import traceback
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from effowt.errors import DataError, EffOWTError
from effowt.fileio import atomic_write_json, atomic_write_text
from effowt.tracking.render import VideoWriter, draw_tracks
from effowt.tracking.tracker import Tracker
from effowt.tracking.writers import mot_lines, tao_records, write_tao_results

if TYPE_CHECKING:
    from effowt.data.sources import VideoSource

SYNTHETIC_IMAGE_STRIDE = 1_000_000
DEFAULT_FPS = 25.0


@dataclass
class VideoOutcome:
    """What happened to one video: ``error`` is None when it finished."""

    ordinal: int
    name: str
    file_stem: str
    video_id: int
    frames: int
    synthetic_ids: bool
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class TrackReport:
    """Summary of :func:`track_source`: outcomes per video, merged box count, speed."""

    videos: list[VideoOutcome]
    boxes: int
    speed: dict[str, Any]

    @property
    def failed(self) -> list[VideoOutcome]:
        return [v for v in self.videos if not v.ok]


def file_stem(name: str) -> str:
    """A file-name-safe form of a video name (TAO names contain '/')."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", name.replace("/", "-")).strip(".-")
    return stem or "video"


def track_video(tracker: Tracker, video: VideoSource, ordinal: int, out_dir: str | os.PathLike,
                render: bool = False, position: int = 0) -> VideoOutcome:
    """Track one video (a :class:`effowt.data.sources.VideoSource`) and write its files.

    Writes ``partial/<stem>.json`` (``{"video", "video_id", "frames", "synthetic_ids",
    "timings", "results"}``, timings in seconds incl. ``io`` = decode + write),
    ``mot/<stem>.txt`` and, with ``render``, ``render/<stem>.mp4``. Raises whatever
    the video or the model raises (DataError for a video without frames); the
    partial file is then absent.
    """
    out = Path(out_dir)
    stem = file_stem(video.name)
    partial = out / "partial" / f"{stem}.json"
    partial.unlink(missing_ok=True)
    synthetic = video.video_id is None
    video_id = ordinal + 1 if synthetic else int(video.video_id)
    tracker.reset()
    tracker.reset_timings()
    records: list[dict[str, Any]] = []
    mot_chunks: list[str] = []
    io_s = 0.0
    frames = 0
    writer = VideoWriter(out / "render" / f"{stem}.mp4",
                         getattr(video, "fps", None) or DEFAULT_FPS) if render else None
    try:
        with tqdm(total=len(video), desc=stem[:40], unit="frame", position=position,
                  leave=False, disable=None) as bar:
            iterator = iter(video)
            while True:
                start = time.perf_counter()
                frame = next(iterator, None)
                io_s += time.perf_counter() - start
                if frame is None:
                    break
                tracks = tracker.update(frame.image)
                start = time.perf_counter()
                image_id = (video_id * SYNTHETIC_IMAGE_STRIDE + frame.index + 1
                            if frame.image_id is None else int(frame.image_id))
                records += tao_records(tracks, video_id, image_id)
                mot_chunks.append(mot_lines(frame.index, tracks))
                if writer is not None:
                    writer.write(draw_tracks(frame.image, tracks))
                io_s += time.perf_counter() - start
                frames += 1
                bar.update()
        if frames == 0:
            raise DataError(f"{video.name}: video has no frames")
        start = time.perf_counter()
        if writer is not None:
            writer.close()
        atomic_write_text(out / "mot" / f"{stem}.txt", "".join(mot_chunks))
        timings = {k: v for k, v in tracker.timings.items() if k != "frames"}
        timings["io"] = io_s + time.perf_counter() - start
        atomic_write_json(partial, {"video": video.name, "video_id": video_id, "frames": frames,
                                    "synthetic_ids": synthetic, "timings": timings,
                                    "results": records})
    finally:
        if writer is not None:
            writer.close(keep=False)
    return VideoOutcome(ordinal, video.name, stem, video_id, frames, synthetic)


def track_videos(tracker: Tracker, videos: Iterable[tuple[int, VideoSource]], out_dir: str | os.PathLike,
                 render: bool = False, position: int = 0) -> list[VideoOutcome]:
    """Track ``(ordinal, video)`` pairs one after another; a video that raises is
    recorded as failed (message + traceback summary) and the next one goes on."""
    outcomes = []
    for ordinal, video in videos:
        try:
            outcomes.append(track_video(tracker, video, ordinal, out_dir, render, position))
        except Exception as err:  # one bad video must not lose the others
            detail = str(err) if isinstance(err, EffOWTError) else \
                f"{type(err).__name__}: {err} ({_where(err)})"
            video_id = video.video_id if video.video_id is not None else ordinal + 1
            outcomes.append(VideoOutcome(ordinal, video.name, file_stem(video.name), int(video_id),
                                         0, video.video_id is None, error=detail))
    return outcomes


def _where(err: BaseException) -> str:
    frames = traceback.extract_tb(err.__traceback__)
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "no traceback"


def _track_shard(shard: int, workers: int, source: str, frames_root: str | None, out_dir: str,
                 run_dir: str | None, device: str, render: bool, overrides: dict[str, Any],
                 videos: list[Any] | None = None) -> list[VideoOutcome]:
    """One worker: load the model and track every ``workers``-th video of the source
    (``videos``: the already opened source, in-process only)."""
    import torch

    from effowt.data.sources import open_source

    if workers > 1:
        torch.set_num_threads(max(1, torch.get_num_threads() // workers))
    if videos is None:
        videos = open_source(source, frames_root)
    tracker = Tracker.from_pretrained(run_dir, device=device, time_stages=True,
                                      tracker_overrides=overrides)
    mine = [(i, v) for i, v in enumerate(videos) if i % workers == shard]
    return track_videos(tracker, mine, out_dir, render, position=shard)


def track_source(source: str | os.PathLike, out_dir: str | os.PathLike,
                 run_dir: str | os.PathLike | None = None, device: str = "cpu",
                 render: bool = False, max_dets: int | None = None,
                 frames_root: str | os.PathLike | None = None, workers: int = 1) -> TrackReport:
    """Track every video of ``source`` with the model of ``run_dir`` (None: the shipped
    default) and write the output folder described in the module docstring."""
    from effowt.data.sources import open_source

    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    source, out = str(source), Path(out_dir)
    root = None if frames_root is None else str(frames_root)
    run = None if run_dir is None else str(run_dir)
    overrides = {} if max_dets is None else {"max_dets": int(max_dets)}
    videos = open_source(source, root)  # fails early and clearly on a bad source
    workers = min(workers, len(videos))
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    args = (source, root, str(out), run, device, render, overrides)
    if workers == 1:
        outcomes = _track_shard(0, 1, *args, videos=videos)
    else:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futures = [pool.submit(_track_shard, shard, workers, *args) for shard in range(workers)]
            outcomes = [o for f in futures for o in f.result()]
    return finish(out, outcomes, wall_s=time.perf_counter() - start, device=device,
                  workers=workers)


def finish(out_dir: str | os.PathLike, outcomes: list[VideoOutcome], wall_s: float,
           device: str = "cpu", workers: int = 1) -> TrackReport:
    """Merge the partial files of the finished videos into ``results.json`` (track ids
    offset to be unique per source), write ``videos.json`` and ``speed.json``."""
    out = Path(out_dir)
    outcomes = sorted(outcomes, key=lambda o: o.ordinal)
    records: list[dict[str, Any]] = []
    totals: dict[str, float] = {}
    frames = 0
    offset = 0
    for outcome in outcomes:
        if not outcome.ok:
            continue
        part = json.loads((out / "partial" / f"{outcome.file_stem}.json").read_text())
        max_id = 0
        for rec in part["results"]:
            max_id = max(max_id, rec["track_id"])
            records.append({**rec, "track_id": rec["track_id"] + offset})
        offset += max_id
        frames += part["frames"]
        for stage, seconds in part["timings"].items():
            totals[stage] = totals.get(stage, 0.0) + seconds
    write_tao_results(out / "results.json", records)
    atomic_write_json(out / "videos.json", [dataclasses.asdict(o) for o in outcomes])
    speed = speed_summary(totals, frames, wall_s, device, workers)
    atomic_write_json(out / "speed.json", speed)
    return TrackReport(videos=outcomes, boxes=len(records), speed=speed)


def speed_summary(totals: dict[str, float], frames: int, wall_s: float, device: str,
                  workers: int) -> dict[str, Any]:
    """``{"frames", "wall_s", "frames_per_s", "device", "workers", "per_frame_ms": {stage:
    ms}}``; stages: ``preprocess``, ``backbone``, ``neck`` (side network or simple
    pyramid), ``heads``, ``association``, ``io`` (decode + write) and ``total`` (their
    sum); ``wall_s`` is elapsed time including model loading."""
    per_frame = {stage: round(1000 * s / frames, 3) if frames else 0.0
                 for stage, s in totals.items()}
    per_frame["total"] = round(sum(per_frame.values()), 3)
    return {"frames": frames, "wall_s": round(wall_s, 3),
            "frames_per_s": round(frames / wall_s, 2) if wall_s > 0 else 0.0,
            "device": device, "workers": workers, "per_frame_ms": per_frame}
