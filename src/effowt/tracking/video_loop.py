"""The per-video loop: track one video frame by frame into its partial file.

A video that fails (unreadable frame, model error, ...) is recorded as failed in
its :class:`~effowt.tracking.output.VideoOutcome` and the next video goes on; an
output that cannot be written (disk full, no permission) stops them all with an
:class:`~effowt.errors.OutputError`, since the next would fail too.
"""

from __future__ import annotations

import itertools
import os
import time
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from effowt.data.sources import output_image_id, output_video_id
from effowt.errors import DataError, EffOWTError, OutputError
from effowt.progress import bar_disable
from effowt.tracking.output import OutputFolder, VideoOutcome, video_stem
from effowt.tracking.partial import CHUNK_FRAMES, PartialWriter
from effowt.tracking.render import VideoWriter, contact_sheet, draw_tracks, sheet_indices
from effowt.tracking.writers import mot_rows, tao_records

if TYPE_CHECKING:
    from effowt.data.detections import VideoDetections
    from effowt.data.sources import VideoSource
    from effowt.tracking.tracker import Tracker

DEFAULT_FPS = 25.0
_NO_DETECTIONS = (np.zeros((0, 4), np.float32), np.zeros(0, np.float32))


def track_video(tracker: Tracker, video: VideoSource, ordinal: int, out_dir: str | os.PathLike,
                render: bool = False, position: int = 0,
                chunk_frames: int = CHUNK_FRAMES, batch_frames: int = 1,
                detections: VideoDetections | None = None) -> VideoOutcome:
    """Track one video (a :class:`effowt.data.sources.VideoSource`) into its partial file,
    ``batch_frames`` frames per model batch.

    ``detections`` (``{frame index: (boxes, scores, category_ids)}``, see
    :mod:`effowt.data.detections`) replaces the model's own detections; a frame
    without an entry has none.

    Appends to ``partial/<stem>.jsonl`` every ``chunk_frames`` frames and ends it
    with the timings (seconds, incl. ``io`` = decode + write); with ``render``
    writes ``render/<stem>.mp4`` and its contact sheet. Raises whatever the video or
    the model raises (DataError for a video without frames); the partial file then
    has no end line.
    """
    out = OutputFolder(Path(out_dir))
    video_id = output_video_id(video, ordinal)
    synthetic = video.video_id is None
    stem = video_stem(video_id, video.name)
    tracker.reset()
    tracker.reset_timings()
    io_s, boxes = 0.0, 0
    writer = VideoWriter(out.render_file(stem, ".mp4"),
                         getattr(video, "fps", None) or DEFAULT_FPS) if render else None
    sheet_at, sheet = set(sheet_indices(len(video))), []
    try:
        with PartialWriter(out.partial_file(stem), video.name, video_id, synthetic, chunk_frames) as partial, \
                tqdm(total=len(video), desc=stem[:40], unit="frame", position=position,
                     leave=False, disable=bar_disable()) as bar:
            iterator = iter(video)
            while True:
                start = time.perf_counter()
                batch = list(itertools.islice(iterator, batch_frames))
                io_s += time.perf_counter() - start
                if not batch:
                    break
                for frame, tracks in _track_frames(tracker, batch, detections):
                    start = time.perf_counter()
                    partial.add(tao_records(tracks, video_id, output_image_id(video_id, frame)),
                                mot_rows(frame.index, tracks))
                    if writer is not None:
                        drawn = draw_tracks(frame.image, tracks)
                        writer.write(drawn)
                        if frame.index in sheet_at:
                            sheet.append(drawn)
                    io_s += time.perf_counter() - start
                    boxes += len(tracks)
                    bar.set_postfix(boxes=boxes, refresh=False)
                    bar.update()
            if partial.frames == 0:
                raise DataError(f"{video.name}: video has no frames")
            start = time.perf_counter()
            if writer is not None:
                writer.close()
                contact_sheet(sheet or [drawn], out.render_file(stem, ".png"))
            timings = {k: v for k, v in tracker.timings.items() if k != "frames"}
            timings["io"] = io_s + time.perf_counter() - start
            labeler = tracker.labeler
            partial.finish(timings, texts=None if labeler is None else labeler.texts,
                           labels=None if labeler is None else labeler.final_labels())
    finally:
        if writer is not None:
            writer.close(keep=False)
    return VideoOutcome(ordinal, video.name, stem, video_id, partial.frames, synthetic)


def track_videos(tracker: Tracker, videos: Iterable[tuple[int, VideoSource]], out_dir: str | os.PathLike,
                 render: bool = False, position: int = 0, batch_frames: int = 1,
                 detections: dict[int, VideoDetections] | None = None) -> list[VideoOutcome]:
    """Track ``(ordinal, video)`` pairs one after another; a video that raises is
    recorded as failed (message + traceback summary) and the next one goes on. An
    output that cannot be written (OutputError) stops them all.
    ``detections``: external detections by ordinal (a video without an entry has none)."""
    outcomes = []
    for ordinal, video in videos:
        try:
            outcomes.append(track_video(tracker, video, ordinal, out_dir, render, position,
                                        batch_frames=batch_frames,
                                        detections=None if detections is None else detections.get(ordinal, {})))
        except OutputError:
            raise
        except Exception as err:  # one bad video must not lose the others
            detail = str(err) if isinstance(err, EffOWTError) else \
                f"{type(err).__name__}: {err} ({_where(err)})"
            video_id = output_video_id(video, ordinal)
            outcomes.append(VideoOutcome(ordinal, video.name, video_stem(video_id, video.name),
                                         video_id, 0, video.video_id is None, error=detail))
    return outcomes


def _track_frames(tracker: Tracker, batch: list[Any], detections: VideoDetections | None
                  ) -> list[tuple[Any, list[Any]]]:
    """``(frame, tracks)`` of consecutive frames: one model batch on the model's own
    detections, frame by frame on external ones (a frame without an entry has none)."""
    if detections is None:
        return list(zip(batch, tracker.update_batch([f.image for f in batch])))
    return [(f, tracker.update(f.image, detections=detections.get(f.index, _NO_DETECTIONS))) for f in batch]


def _where(err: BaseException) -> str:
    frames = traceback.extract_tb(err.__traceback__)
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "no traceback"
