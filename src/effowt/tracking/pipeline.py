"""Tracking whole sources: a video file, a frame folder or a TAO split.

Output folder layout (``out_dir``)::

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
lives); ``results.json``, ``videos.json``, ``speed.json`` and ``mot/`` are
written only at the end, atomically, and only when at least one video finished,
so a run that fails or is interrupted leaves the previous ones as they were.
With ``resume`` the videos whose partial file is complete are kept and the
others are tracked again from their first frame; the merged outputs are the
same as an uninterrupted run's.

A video that fails (unreadable frame, model error, ...) is reported in
``videos.json`` and by :class:`TrackReport`; the other videos go on and keep
their results. An output that cannot be written (disk full, no permission)
stops the run with an :class:`~effowt.errors.OutputError`. Videos without TAO
ids (video files, frame folders) get synthetic ids: ``video_id`` = position in
the source + 1 and ``image_id`` = ``video_id * 1_000_000 + frame index + 1``.
Track ids in ``results.json`` are made unique over the whole source by
offsetting each video's ids by the number of ids the videos before it used
(the TAO convention); ``mot/`` and ``partial/`` keep each video's own ids,
starting at 1.

With ``workers > 1``, videos are dealt round-robin to worker processes (spawned,
each loading the model itself); per-frame times then add up CPU/GPU time of all
workers, and ``wall_s`` is the elapsed time.

**Under torchrun** (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT`` set)
the videos are sharded across the ranks instead (our choices)::

    rank 0      holds the folder lock, starts afresh or resumes (reads partial/),
                broadcasts which videos are done
    every rank  tracks todo[rank::world_size] into partial/ (its own files, one per
                video; on cuda:<LOCAL_RANK> when --device is cuda), workers too
    rank 0      gathers every rank's outcomes and merges the partial files into the
                same results.json, mot/, videos.json a single process writes;
                speed.json adds world_size and videos_per_rank

The process group is gloo on CPU and GPU alike: only the outcome lists travel
through it, tensors never do. ``--out`` must be one folder every rank sees (a
shared file system across nodes). ``--resume`` works across world sizes, since
what is kept is per video.

By default nothing is synchronised per stage (``speed.json`` has the overall
frames/s, ``model``, ``association`` and ``io``); ``profile=True`` times the
model's stages (``backbone``, ``neck``, ``heads``), synchronising CUDA between
them. ``batch_frames`` runs that many consecutive frames as one model batch
(:meth:`Tracker.update_batch`: the same tracks).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import multiprocessing
import os
import re
import shutil
import signal
import time
import traceback
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from effowt.config import EffOWTConfig, TrackerConfig, load_config, with_tracker_overrides
from effowt.distributed import broadcast_object, gather_objects, local_device, process_group, resolve_device
from effowt.errors import ConfigError, DataError, EffOWTError, Interrupted, OutputError
from effowt.fileio import atomic_write_json, atomic_writer, check_outside, output_error, prepare_output_dir
from effowt.lockfile import folder_lock
from effowt.progress import bar_disable
from effowt.runs import CONFIG_FILE, resolve_run_dir
from effowt.tracking.labels import DEFAULT_PROMPT, text_tower_config
from effowt.tracking.partial import CHUNK_FRAMES, PartialVideo, PartialWriter, read_partial
from effowt.tracking.render import VideoWriter, contact_sheet, draw_tracks, sheet_indices
from effowt.tracking.tracker import Tracker
from effowt.tracking.writers import mot_lines, relabel_mot, tao_records, write_tao_results

if TYPE_CHECKING:
    from effowt.data.sources import VideoSource

SYNTHETIC_IMAGE_STRIDE = 1_000_000
DEFAULT_FPS = 25.0
PARTIAL_DIR = "partial"
SETTINGS_FILE = "settings.json"
_NO_DETECTIONS = (np.zeros((0, 4), np.float32), np.zeros(0, np.float32))


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
    """Summary of :func:`track_source`: outcomes per video, merged box count, speed;
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


def _video_id(video: Any, ordinal: int) -> int:
    return ordinal + 1 if video.video_id is None else int(video.video_id)


def track_video(tracker: Tracker, video: VideoSource, ordinal: int, out_dir: str | os.PathLike,
                render: bool = False, position: int = 0,
                chunk_frames: int = CHUNK_FRAMES, batch_frames: int = 1,
                detections: dict[int, Any] | None = None) -> VideoOutcome:
    """Track one video (a :class:`effowt.data.sources.VideoSource`) into its partial file,
    ``batch_frames`` frames per model batch.

    ``detections`` (``{frame index: (boxes, scores, category_ids)}``, see
    :mod:`effowt.data.detections`) replaces the model's own detections; a frame
    without an entry has none.

    Appends to ``partial/<stem>.jsonl`` every ``chunk_frames`` frames and ends it
    with the timings (seconds, incl. ``io`` = decode + write); with ``render``
    writes ``render/<stem>.mp4``. Raises whatever the video or the model raises
    (DataError for a video without frames); the partial file then has no end line.
    """
    out = Path(out_dir)
    video_id = _video_id(video, ordinal)
    synthetic = video.video_id is None
    stem = video_stem(video_id, video.name)
    tracker.reset()
    tracker.reset_timings()
    io_s, boxes = 0.0, 0
    writer = VideoWriter(out / "render" / f"{stem}.mp4",
                         getattr(video, "fps", None) or DEFAULT_FPS) if render else None
    sheet_at, sheet = set(sheet_indices(len(video))), []
    try:
        with PartialWriter(out / PARTIAL_DIR / f"{stem}.jsonl", video.name, video_id, synthetic,
                           chunk_frames) as partial, \
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
                    image_id = (video_id * SYNTHETIC_IMAGE_STRIDE + frame.index + 1
                                if frame.image_id is None else int(frame.image_id))
                    partial.add(tao_records(tracks, video_id, image_id), mot_lines(frame.index, tracks))
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
                contact_sheet(sheet or [drawn], out / "render" / f"{stem}.png")
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
                 detections: dict[int, dict[int, Any]] | None = None) -> list[VideoOutcome]:
    """Track ``(ordinal, video)`` pairs one after another; a video that raises is
    recorded as failed (message + traceback summary) and the next one goes on. An
    output that cannot be written (OutputError) stops them all: the next would fail too.
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
            video_id = _video_id(video, ordinal)
            outcomes.append(VideoOutcome(ordinal, video.name, video_stem(video_id, video.name),
                                         video_id, 0, video.video_id is None, error=detail))
    return outcomes


def _track_frames(tracker: Tracker, batch: list[Any], detections: dict[int, Any] | None
                  ) -> list[tuple[Any, list[Any]]]:
    """``(frame, tracks)`` of consecutive frames: one model batch on the model's own
    detections, frame by frame on external ones (a frame without an entry has none)."""
    if detections is None:
        return list(zip(batch, tracker.update_batch([f.image for f in batch])))
    return [(f, tracker.update(f.image, detections=detections.get(f.index, _NO_DETECTIONS))) for f in batch]


def _where(err: BaseException) -> str:
    frames = traceback.extract_tb(err.__traceback__)
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "no traceback"


@dataclass(frozen=True)
class RunOptions:
    """How a worker tracks: the model's device, ``profile`` (time the model's stages),
    ``batch_frames`` (frames per model batch), ``precision`` (``fp32``, ``bf16``, ``fp16``),
    ``threads`` (torch intra-op CPU threads per tracking process; None: the default of
    :mod:`effowt.threads`, from the usable cores, the workers and the model's size),
    ``image_size`` (the model input's long side; None: the run's ``model.image_size``)."""

    device: str = "cpu"
    profile: bool = False
    batch_frames: int = 1
    precision: str = "fp32"
    threads: int | None = None
    image_size: int | None = None


def _track_shard(shard: int, workers: int, ordinals: list[int], source: str,
                 frames_root: str | None, out_dir: str, run_dir: str | None, options: RunOptions,
                 render: bool, run_cfg: EffOWTConfig,
                 detections: dict[int, dict[int, Any]] | None = None,
                 texts: list[str] | None = None, prompt: str = DEFAULT_PROMPT,
                 videos: list[Any] | None = None) -> list[VideoOutcome]:
    """One worker: load the model and track every ``workers``-th video of ``ordinals``
    (positions in the source; ``videos``: the already opened source, in-process only) with
    ``run_cfg``, the run's config as :func:`track_source` read and resolved it once."""
    from effowt.data.sources import open_source
    from effowt.threads import set_threads

    if videos is None:
        videos = open_source(source, frames_root)
    tracker = Tracker.from_pretrained(run_dir, device=options.device, time_stages=options.profile,
                                      config=run_cfg, texts=texts, prompt=prompt,
                                      precision=options.precision, image_size=options.image_size)
    set_threads(options.threads, tracker.model, workers * int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    mine = [(i, videos[i]) for i in ordinals[shard::workers]]
    return track_videos(tracker, mine, out_dir, render, position=shard, batch_frames=options.batch_frames,
                        detections=detections)


def _ignore_sigint() -> None:
    """Worker initializer: Ctrl-C reaches the whole process group; the parent alone
    handles it (and stops the workers)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _track_ordinals(ordinals: list[int], workers: int, args: tuple[Any, ...],
                    videos: list[Any]) -> list[VideoOutcome]:
    """Track the videos at ``ordinals`` in this process or in ``workers`` spawned ones."""
    if not ordinals:
        return []
    workers = min(workers, len(ordinals))
    if workers == 1:
        return _track_shard(0, 1, ordinals, *args, videos=videos)
    ctx = multiprocessing.get_context("spawn")
    before = set(multiprocessing.active_children())
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_ignore_sigint) as pool:
        try:
            futures = [pool.submit(_track_shard, shard, workers, ordinals, *args)
                       for shard in range(workers)]
            return [o for f in futures for o in f.result()]
        except KeyboardInterrupt:
            for process in set(multiprocessing.active_children()) - before:
                process.terminate()
            raise


def track_source(source: str | os.PathLike | VideoSource, out_dir: str | os.PathLike,
                 run_dir: str | os.PathLike | None = None, device: str = "cpu",
                 render: bool = False, max_dets: int | None = None,
                 frames_root: str | os.PathLike | None = None, workers: int = 1,
                 resume: bool = False, detections: str | os.PathLike | None = None,
                 tracker_overrides: dict[str, Any] | None = None, texts: list[str] | None = None,
                 prompt: str = DEFAULT_PROMPT, batch_frames: int = 1, precision: str = "fp32",
                 profile: bool = False, threads: int | None = None, image_size: int | None = None) -> TrackReport:
    """Track every video of ``source`` (a path, or an opened source such as a
    :class:`~effowt.data.sources.StreamSource`) with the model of ``run_dir`` (None: the
    shipped default) and write the output folder described in the module docstring.

    ``resume`` keeps the videos an earlier run into ``out_dir`` finished (the same
    source and settings, else ConfigError) and tracks the others. On SIGINT /
    SIGTERM (KeyboardInterrupt) raises :class:`~effowt.errors.Interrupted` saying
    how many videos are kept. ``detections``: a COCO-results json or a folder of
    MOTChallenge det files (:mod:`effowt.data.detections`) whose boxes replace the
    model's own; read and checked against the source before any work.
    ``tracker_overrides`` (field -> value, see
    :func:`effowt.config.parse_tracker_overrides`) change the run's tracker settings;
    ``max_dets`` is one of them. Out-of-range values are a ConfigError before any work.
    ``texts``: label every track with one of them through the run's VLM text tower
    (:mod:`effowt.tracking.labels`; ConfigError before any work for a backbone without
    one), each text put in ``prompt``.
    ``batch_frames``, ``precision``, ``profile``, ``image_size`` and ``threads`` (it sets this process's
    torch thread count when the videos are tracked in-process): see :class:`RunOptions`. Under
    torchrun the videos are sharded across the ranks (module docstring).
    """
    from effowt.data.sources import open_source, source_id
    from effowt.tracking.tracker import PRECISIONS

    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if batch_frames < 1:
        raise ValueError(f"batch_frames must be >= 1, got {batch_frames}")
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    if image_size is not None and not 32 <= image_size <= 4096:
        raise ValueError(f"image_size must be in [32, 4096], got {image_size}")
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    resolve_device(device)
    root = None if frames_root is None else str(frames_root)
    run = None if run_dir is None else str(run_dir)
    overrides = dict(tracker_overrides or {})
    if max_dets is not None:
        if "max_dets" in overrides:
            raise ConfigError(f"max_dets={max_dets} and tracker_overrides max_dets={overrides['max_dets']}: "
                              "set the cap one way (max_dets, --max-dets on the command line)")
        overrides["max_dets"] = int(max_dets)
    # the run's config: read once here, overrides applied once; every tracking process builds from it
    run_cfg = with_tracker_overrides(load_config(str(resolve_run_dir(run) / CONFIG_FILE)), overrides)
    tracker_cfg = run_cfg.tracker
    if texts is not None:
        text_tower_config(run_cfg.model.backbone)
    videos = open_source(source, root)  # fails early and clearly on a bad source
    if isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
        check_outside(out_dir, source, "the source folder")
    external = None if detections is None else load_detections(detections, videos)
    settings = {"source": source_id(source),
                "frames_root": None if root is None else str(Path(root).resolve()),
                "weights": None if run is None else str(Path(run).resolve()),
                "max_dets": max_dets, "render": render, "tracker_overrides": overrides or None,
                "texts": texts, "prompt": prompt if texts is not None else None,
                "detections": None if detections is None else str(Path(detections).resolve()),
                "precision": None if precision == "fp32" else precision, "image_size": image_size}
    with process_group("gloo") as (rank, world):
        rank_device = str(local_device(device)) if world > 1 else device  # cuda:LOCAL_RANK under torchrun
        options = RunOptions(rank_device, profile, batch_frames, precision, threads, image_size)
        args = (str(source), root, str(Path(out_dir)), run, options, render, run_cfg, external, texts, prompt)
        with contextlib.ExitStack() as held:
            if rank == 0:
                setup = _first_rank_setup(out_dir, settings, videos, resume, held, world)
            if world > 1:
                setup = broadcast_object(setup if rank == 0 else None)
            if isinstance(setup, str):
                raise EffOWTError(setup)
            done, out = setup
            todo = [i for i in range(len(videos)) if i not in done]
            mine = todo[rank::world]
            start = time.perf_counter()
            try:
                if world == 1:
                    outcomes = _track_ordinals(mine, workers, args, videos)
                    per_rank = [len(outcomes)]
                else:
                    outcomes, per_rank = _track_rank_share(mine, workers, args, videos, rank, world)
                    if rank != 0:
                        return TrackReport(videos=outcomes, boxes=0, speed={}, written=False, rank=rank)
                report = finish(out, [*done.values(), *outcomes], wall_s=time.perf_counter() - start,
                                device=device, workers=min(workers, max(1, len(mine))),
                                videos_per_rank=per_rank)
                if report.written:
                    atomic_write_json(out / "tracker.json", {"overrides": overrides,
                                                             "tracker": dataclasses.asdict(tracker_cfg)})
            except KeyboardInterrupt as err:
                kept = sum(1 for i, v in enumerate(videos) if _finished(out, v, i) is not None)
                raise Interrupted(
                    getattr(err, "signum", signal.SIGINT),
                    f"{kept} of {len(videos)} video(s) finished and kept in {out / PARTIAL_DIR}; "
                    f"results.json was not updated; run the same command with --resume to track the rest",
                ) from None
    report.resumed = len(done)
    return report


def resolved_tracker_config(run_dir: str | os.PathLike | None, overrides: dict[str, Any]) -> TrackerConfig:
    """The tracker settings a run tracks with: its ``config.yaml``'s ``tracker`` section
    (``None``: the shipped checkpoint's) with ``overrides`` (field -> value) applied and
    checked like any config override (ConfigError naming the setting)."""
    return with_tracker_overrides(load_config(str(resolve_run_dir(run_dir) / CONFIG_FILE)), overrides).tracker


def load_detections(path: str | os.PathLike, videos: list[Any]) -> dict[int, dict[int, Any]]:
    """External detections for ``videos`` (the opened source) by video position: a
    folder is read as MOTChallenge det files named after the videos, a file as a
    COCO-results json whose image ids are the source's (TAO ids, or the synthetic ids
    of ``results.json``: ``video_id * SYNTHETIC_IMAGE_STRIDE + frame index + 1``)."""
    from effowt.data.detections import read_coco_detections, read_mot_detections

    if Path(path).is_dir():
        return read_mot_detections(path, [v.name for v in videos], [len(v) for v in videos])
    tao: dict[int, tuple[int, int]] = {}
    synthetic: dict[int, int] = {}
    for ordinal, video in enumerate(videos):
        if video.video_id is None:
            synthetic[ordinal + 1] = ordinal
        else:
            tao.update({f.image_id: (ordinal, i) for i, f in enumerate(video.video.frames)})

    def locate(image_id: Any) -> tuple[int, int] | None:
        if not isinstance(image_id, int) or isinstance(image_id, bool):
            return None
        if image_id in tao:
            return tao[image_id]
        video_id, index = divmod(image_id - 1, SYNTHETIC_IMAGE_STRIDE)
        if video_id not in synthetic or index >= len(videos[synthetic[video_id]]):
            return None
        return synthetic[video_id], index

    return read_coco_detections(path, locate)


def _first_rank_setup(out_dir: str | os.PathLike, settings: dict[str, Any], videos: list[Any], resume: bool,
                      held: contextlib.ExitStack, world: int) -> tuple[dict[int, VideoOutcome], Path] | str:
    """On rank 0 (or the only process): prepare and lock the output folder (the lock is
    held by ``held``), start afresh or resume. Returns the finished videos and the
    folder, or under torchrun the error message (the other ranks raise it too)."""
    try:
        out = prepare_output_dir(out_dir)
        held.enter_context(folder_lock(out))
        return (_resume(out, settings, videos) if resume else _start_afresh(out, settings)), out
    except EffOWTError as err:
        if world > 1:
            return str(err)
        raise


def _track_rank_share(mine: list[int], workers: int, args: tuple[Any, ...], videos: list[Any], rank: int,
                      world: int) -> tuple[list[VideoOutcome], list[int]]:
    """Track this rank's videos, then gather every rank's outcomes on rank 0: (all
    outcomes, videos per rank) there, (own outcomes, []) elsewhere. An error on any
    rank (e.g. an unwritable output) is raised on that rank and on rank 0, after the
    gather, so that no rank waits for one that stopped."""
    try:
        outcomes, error = _track_ordinals(mine, workers, args, videos), None
    except EffOWTError as err:
        outcomes, error = [], err
    gathered = gather_objects((outcomes, None if error is None else str(error)), rank, world)
    if error is not None:
        raise error
    failed = [f"rank {r}: {e}" for r, (_, e) in enumerate(gathered) if e]
    if failed:
        raise EffOWTError("; ".join(failed))
    return ([o for part, _ in gathered for o in part], [len(part) for part, _ in gathered]) if rank == 0 \
        else (outcomes, [])


def _start_afresh(out: Path, settings: dict[str, Any]) -> dict[int, VideoOutcome]:
    """A new run: clear the partial folder and record its settings."""
    partial = out / PARTIAL_DIR
    try:
        if partial.exists():
            shutil.rmtree(partial)
    except OSError as err:
        raise output_error(partial, err) from None
    atomic_write_json(partial / SETTINGS_FILE, settings)
    return {}


def _resume(out: Path, settings: dict[str, Any], videos: list[Any]) -> dict[int, VideoOutcome]:
    """Check the earlier run's settings and return its finished videos by ordinal."""
    path = out / PARTIAL_DIR / SETTINGS_FILE
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise EffOWTError(f"{out}: --resume given but there is no tracking run to resume "
                          f"({path} missing or unreadable); run without --resume") from None
    changed = sorted(k for k in settings.keys() | saved.keys() if settings.get(k) != saved.get(k))
    if changed:
        raise ConfigError(f"{path}: cannot resume with different settings: "
                          + ", ".join(f"{k} {saved.get(k)!r} -> {settings.get(k)!r}" for k in changed)
                          + "; run without --resume to start over")
    done = {}
    for ordinal, video in enumerate(videos):
        part = _finished(out, video, ordinal)
        if part is not None:
            done[ordinal] = VideoOutcome(ordinal, video.name, part.path.stem, part.video_id,
                                         part.end["frames"], part.synthetic_ids)
    return done


def _finished(out: Path, video: Any, ordinal: int) -> PartialVideo | None:
    """The complete partial file of ``video`` (position ``ordinal``), or None."""
    video_id = _video_id(video, ordinal)
    part = read_partial(out / PARTIAL_DIR / f"{video_stem(video_id, video.name)}.jsonl")
    ok = part is not None and part.done and part.video == video.name and part.video_id == video_id
    return part if ok else None


def finish(out_dir: str | os.PathLike, outcomes: list[VideoOutcome], wall_s: float,
           device: str = "cpu", workers: int = 1, videos_per_rank: list[int] | None = None) -> TrackReport:
    """Merge the partial files of the finished videos into ``results.json`` (track ids
    offset to be unique per source) and ``mot/``, write ``videos.json`` and ``speed.json``.

    Writes nothing when no video finished (``report.written`` is then False), so the
    outputs of an earlier run stay as they were. Every file is written atomically and
    streamed chunk by chunk (memory does not grow with the videos' length).
    """
    out = Path(out_dir)
    outcomes = sorted(outcomes, key=lambda o: o.ordinal)
    parts = []
    for outcome in outcomes:
        if outcome.ok:
            part = read_partial(out / PARTIAL_DIR / f"{outcome.file_stem}.jsonl")
            if part is None or not part.done or part.video_id != outcome.video_id:
                raise DataError(f"{out / PARTIAL_DIR / outcome.file_stem}.jsonl: missing or "
                                f"unfinished partial file of video {outcome.name!r}")
            parts.append(part)
    if not parts:
        return TrackReport(videos=outcomes, boxes=0,
                           speed=speed_summary({}, 0, wall_s, device, workers, videos_per_rank), written=False)
    totals: dict[str, float] = {}
    for part in parts:
        classes = {int(k): v[0] + 1 for k, v in part.end.get("labels", {}).items()}
        with atomic_writer(out / "mot" / f"{part.path.stem}.txt") as f:
            for chunk in part.chunks():
                f.write((relabel_mot(chunk["mot"], classes) if classes else chunk["mot"]).encode("utf-8"))
        for stage, seconds in part.end["timings"].items():
            totals[stage] = totals.get(stage, 0.0) + seconds
    boxes = write_tao_results(out / "results.json", _merged_records(parts))
    atomic_write_json(out / "videos.json", [dataclasses.asdict(o) for o in outcomes])
    frames = sum(part.end["frames"] for part in parts)
    speed = speed_summary(totals, frames, wall_s, device, workers, videos_per_rank)
    atomic_write_json(out / "speed.json", speed)
    return TrackReport(videos=outcomes, boxes=boxes, speed=speed)


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
