"""A tracking run's output folder: its layout, lock, resume, partial files and merge.

Layout (``out_dir``)::

    results.json          TAO results of every video that finished (flat list)
    videos.json           per video: name, video_id, file_stem, frames, ok / error, synthetic ids
    speed.json            per-frame milliseconds per stage (see :func:`speed_summary`)
    tracker.json          the tracker settings used: the run's ``tracker`` config with the
                          ``tracker.KEY=VALUE`` overrides applied, and the overrides
    mot/<stem>.txt        MOT-challenge txt per video (per-video track ids)
    render/<stem>.mp4     annotated video (``render=True``): source resolution, at least
                          512 px on the long side (see :mod:`effowt.tracking.render`)
    render/<stem>.png     its contact sheet: a few evenly spaced drawn frames side by side
    partial/              the run's working state (see :mod:`effowt.tracking.partial`):
                          <stem>.jsonl per video, appended in chunks while it is tracked,
                          and settings.json, what ``resume`` must match
    .effowt.lock          the pid of the run that holds the folder (see :mod:`effowt.lockfile`)

``<stem>`` is ``<video_id>-<name made file-name-safe>``: unique per video even
when two names sanitise alike (``clip 1`` and ``clip-1``; all-non-ASCII names);
the original name is in ``videos.json`` and in each partial file's header.

Promises: one run at a time per folder (a second is refused while the first
lives); ``results.json``, ``videos.json``, ``speed.json``, ``tracker.json`` and
``mot/`` are written only at the end, atomically, and only when at least one video
finished, so a run that fails or is interrupted leaves the previous ones as they
were. With ``resume`` the videos whose partial file is complete are kept and the
others are tracked again from their first frame; the merged outputs are the same as
an uninterrupted run's.

Videos without TAO ids (video files, frame folders, streams) get synthetic ids
(:func:`effowt.data.sources.output_image_id`). Track ids in ``results.json`` are
made unique over the whole source by offsetting each video's ids by the number of
ids the videos before it used (the TAO convention); ``mot/`` and ``partial/`` keep
each video's own ids, starting at 1.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from effowt.errors import ConfigError, DataError, EffOWTError
from effowt.fileio import atomic_write_json, atomic_writer, output_error, prepare_output_dir
from effowt.lockfile import folder_lock
from effowt.tracking.partial import PartialVideo, read_partial
from effowt.tracking.writers import mot_text, write_tao_results

if TYPE_CHECKING:
    from effowt.data.sources import VideoSource

PARTIAL_DIR = "partial"
SETTINGS_FILE = "settings.json"


@dataclass
class VideoOutcome:
    """What happened to one video (a row of ``videos.json``): ``error`` is None when it finished."""

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
    """Summary of a run: outcomes per video, merged box count, speed;
    ``resumed``: videos kept from an earlier run; ``written``: whether the outputs
    were (re)written (False when no video finished); ``rank``: the torchrun rank
    (only rank 0's report describes the run: the others carry their own videos)."""

    videos: list[VideoOutcome]
    boxes: int
    speed: dict[str, Any]
    resumed: int = 0
    written: bool = True
    rank: int = 0

    @property
    def failed(self) -> list[VideoOutcome]:
        return [v for v in self.videos if not v.ok]


def file_stem(name: str) -> str:
    """A file-name-safe form of a video name (TAO names contain '/')."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", name.replace("/", "-")).strip(".-")
    return stem or "video"


def video_stem(video_id: int, name: str) -> str:
    """The file stem of a video's outputs: ``<video_id>-<file_stem(name)>``, unique per
    video because video ids are (TAO ids, or synthetic ones)."""
    return f"{video_id}-{file_stem(name)}"


@dataclass(frozen=True)
class OutputFolder:
    """The output folder at ``path`` (layout in the module docstring): where each file
    goes; :meth:`hold` makes, checks and locks it for a run."""

    path: Path

    def partial_file(self, stem: str) -> Path:
        return self.path / PARTIAL_DIR / f"{stem}.jsonl"

    def render_file(self, stem: str, suffix: str) -> Path:
        """``render/<stem><suffix>``: the annotated ``.mp4`` or its ``.png`` contact sheet."""
        return self.path / "render" / f"{stem}{suffix}"

    @classmethod
    @contextmanager
    def hold(cls, out_dir: str | os.PathLike) -> Iterator[OutputFolder]:
        """The folder ``out_dir``, created, proved writable and locked for the block
        (OutputError / EffOWTError naming it when it cannot be, is empty, or another run
        holds it)."""
        out = cls(prepare_output_dir(out_dir))
        with folder_lock(out.path):
            yield out

    def start(self, settings: dict[str, Any], videos: list[VideoSource], resume: bool) -> dict[int, VideoOutcome]:
        """Start afresh (clear ``partial/``, record ``settings``) or, with ``resume``, check
        the earlier run's settings and return its finished videos by ordinal."""
        return self._resume(settings, videos) if resume else self._start_afresh(settings)

    def _start_afresh(self, settings: dict[str, Any]) -> dict[int, VideoOutcome]:
        partial = self.path / PARTIAL_DIR
        try:
            if partial.exists():
                shutil.rmtree(partial)
        except OSError as err:
            raise output_error(partial, err) from None
        atomic_write_json(partial / SETTINGS_FILE, settings)
        return {}

    def _resume(self, settings: dict[str, Any], videos: list[VideoSource]) -> dict[int, VideoOutcome]:
        path = self.path / PARTIAL_DIR / SETTINGS_FILE
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise EffOWTError(f"{self.path}: --resume given but there is no tracking run to resume "
                              f"({path} missing or unreadable); run without --resume") from None
        changed = sorted(k for k in settings.keys() | saved.keys() if settings.get(k) != saved.get(k))
        if changed:
            raise ConfigError(f"{path}: cannot resume with different settings: "
                              + ", ".join(f"{k} {saved.get(k)!r} -> {settings.get(k)!r}" for k in changed)
                              + "; run without --resume to start over")
        done = {}
        for ordinal, video in enumerate(videos):
            part = self.finished(video, ordinal)
            if part is not None:
                done[ordinal] = VideoOutcome(ordinal, video.name, part.path.stem, part.video_id,
                                             part.end["frames"], part.synthetic_ids)
        return done

    def finished(self, video: VideoSource, ordinal: int) -> PartialVideo | None:
        """The complete partial file of ``video`` (position ``ordinal``), or None."""
        from effowt.data.sources import output_video_id

        video_id = output_video_id(video, ordinal)
        part = read_partial(self.partial_file(video_stem(video_id, video.name)))
        ok = part is not None and part.done and part.video == video.name and part.video_id == video_id
        return part if ok else None

    def merge(self, outcomes: list[VideoOutcome], wall_s: float, device: str = "cpu", workers: int = 1,
              videos_per_rank: list[int] | None = None, tracker: dict[str, Any] | None = None) -> TrackReport:
        """Merge the partial files of the finished videos into ``results.json`` (track ids
        offset to be unique per source) and ``mot/`` (each video's text written once,
        with its tracks' final labels), write ``videos.json``, ``speed.json`` and
        (``tracker``: the settings used) ``tracker.json``.

        Writes nothing when no video finished (``report.written`` is then False), so the
        outputs of an earlier run stay as they were. Every file is written atomically and
        streamed chunk by chunk (memory does not grow with the videos' length).
        """
        outcomes = sorted(outcomes, key=lambda o: o.ordinal)
        parts = [self._finished_part(o) for o in outcomes if o.ok]
        if not parts:
            return TrackReport(videos=outcomes, boxes=0,
                               speed=speed_summary({}, 0, wall_s, device, workers, videos_per_rank), written=False)
        totals: dict[str, float] = {}
        for part in parts:
            classes = {int(k): v[0] + 1 for k, v in part.end.get("labels", {}).items()}
            with atomic_writer(self.path / "mot" / f"{part.path.stem}.txt") as f:
                for chunk in part.chunks():
                    f.write(mot_text(chunk["mot"], classes).encode("utf-8"))
            for stage, seconds in part.end["timings"].items():
                totals[stage] = totals.get(stage, 0.0) + seconds
        boxes = write_tao_results(self.path / "results.json", _merged_records(parts))
        atomic_write_json(self.path / "videos.json", [dataclasses.asdict(o) for o in outcomes])
        frames = sum(part.end["frames"] for part in parts)
        speed = speed_summary(totals, frames, wall_s, device, workers, videos_per_rank)
        atomic_write_json(self.path / "speed.json", speed)
        if tracker is not None:
            atomic_write_json(self.path / "tracker.json", tracker)
        return TrackReport(videos=outcomes, boxes=boxes, speed=speed)

    def _finished_part(self, outcome: VideoOutcome) -> PartialVideo:
        path = self.partial_file(outcome.file_stem)
        part = read_partial(path)
        if part is None or not part.done or part.video_id != outcome.video_id:
            raise DataError(f"{path}: missing or unfinished partial file of video {outcome.name!r}")
        return part


def _merged_records(parts: list[PartialVideo]) -> Iterator[dict[str, Any]]:
    """Every video's TAO records in order, track ids offset by the ids used before; with
    labels, each record carries its track's final label."""
    offset = 0
    for part in parts:
        texts, labels = part.end.get("texts"), part.end.get("labels", {})
        for chunk in part.chunks():
            for rec in chunk["results"]:
                out = {**rec, "track_id": rec["track_id"] + offset}
                final = labels.get(str(rec["track_id"]))
                if final is not None:
                    out.update(label=texts[final[0]], label_score=final[1])
                yield out
        offset += part.end["max_track_id"]


def speed_summary(totals: dict[str, float], frames: int, wall_s: float, device: str,
                  workers: int, videos_per_rank: list[int] | None = None) -> dict[str, Any]:
    """``{"frames", "wall_s", "frames_per_s", "device", "workers", "world_size",
    "videos_per_rank", "per_frame_ms": {stage: ms}}``; stages: ``preprocess``, ``model``
    (or, when profiled, ``backbone``, ``neck`` (side network or simple pyramid),
    ``heads``), ``association``, ``io`` (decode + write) and ``total`` (their sum);
    ``wall_s`` is elapsed time including model loading; ``videos_per_rank``: the videos
    each torchrun rank tracked in this run (one entry without torchrun)."""
    per_frame = {stage: round(1000 * s / frames, 3) if frames else 0.0
                 for stage, s in totals.items()}
    per_frame["total"] = round(sum(per_frame.values()), 3)
    return {"frames": frames, "wall_s": round(wall_s, 3),
            "frames_per_s": round(frames / wall_s, 2) if wall_s > 0 else 0.0,
            "device": device, "workers": workers, "world_size": len(videos_per_rank or [0]),
            "videos_per_rank": list(videos_per_rank or [0]), "per_frame_ms": per_frame}
