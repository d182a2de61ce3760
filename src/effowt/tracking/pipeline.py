"""Tracking whole sources: a video file, a frame folder, a TAO split or a stream.

Three parts: :mod:`effowt.tracking.video_loop` tracks one video into its partial
file; :class:`~effowt.tracking.output.OutputFolder` owns the output folder (its
layout, described there, the lock, resume, the partial files and the merge into
``results.json``, ``mot/``, ``videos.json``, ``speed.json``, ``tracker.json``); this
module resolves a run once into a frozen :class:`TrackJob` (:func:`track_source`)
and runs it (:func:`run_job`): which process tracks which videos, then the merge.

A video that fails (unreadable frame, model error, ...) is reported in
``videos.json`` and by :class:`~effowt.tracking.output.TrackReport`; the other
videos go on and keep their results. An output that cannot be written (disk full,
no permission) stops the run with an :class:`~effowt.errors.OutputError`.

With ``workers > 1``, videos are dealt round-robin to worker processes (spawned,
each loading the model itself from the job); per-frame times then add up CPU/GPU
time of all workers, and ``wall_s`` is the elapsed time.

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
import multiprocessing
import os
import signal
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from effowt.config import EffOWTConfig, load_config, with_tracker_overrides
from effowt.distributed import (
    broadcast_object,
    env_world_size,
    gather_objects,
    launched,
    local_device,
    process_group,
    resolve_device,
)
from effowt.errors import ConfigError, EffOWTError, Interrupted
from effowt.fileio import check_outside
from effowt.runs import CONFIG_FILE, resolve_run_dir
from effowt.tracking.labels import DEFAULT_PROMPT, text_tower_config
from effowt.tracking.output import PARTIAL_DIR, OutputFolder, TrackReport, VideoOutcome
from effowt.tracking.partial import PARTIAL_FORMAT
from effowt.tracking.tracker import PRECISIONS, Tracker
from effowt.tracking.video_loop import track_videos

if TYPE_CHECKING:
    from effowt.data.detections import VideoDetections
    from effowt.data.sources import VideoSource


@dataclass(frozen=True)
class TrackJob:
    """One tracking run, resolved once by :func:`track_source`; every tracking process
    (in-process, spawned worker, torchrun rank) works from it, and spawned workers get
    it whole (it pickles).

    ``config``: the run's ``config.yaml``, read once, with ``overrides`` (tracker field ->
    value, ``max_dets`` among them) applied once; ``settings``: what ``partial/settings.json``
    records and ``resume`` must match; ``device``: as given (recorded in ``speed.json``),
    ``process_device``: this process's, checked once (``cuda:<LOCAL_RANK>`` under
    torchrun); ``detections``: external detections by video position, read and checked
    against the source; the rest as in :func:`track_source`.
    """

    source: str
    frames_root: str | None
    out_dir: str
    run_dir: str | None
    config: EffOWTConfig
    overrides: dict[str, Any]
    settings: dict[str, Any]
    device: str
    process_device: str
    workers: int = 1
    resume: bool = False
    render: bool = False
    profile: bool = False
    batch_frames: int = 1
    precision: str = "fp32"
    threads: int | None = None
    image_size: int | None = None
    detections: dict[int, VideoDetections] | None = None
    texts: list[str] | None = None
    prompt: str = DEFAULT_PROMPT


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
    shipped default) and write the output folder of :mod:`effowt.tracking.output`.

    ``resume`` keeps the videos an earlier run into ``out_dir`` finished (the same
    source and settings, else ConfigError) and tracks the others. On SIGINT /
    SIGTERM (KeyboardInterrupt) raises :class:`~effowt.errors.Interrupted` saying
    how many videos are kept. ``detections``: a COCO-results json or a folder of
    MOTChallenge det files (:mod:`effowt.data.detections`) whose boxes replace the
    model's own; read and checked against the source before any work.
    ``tracker_overrides`` (field -> value, see
    :func:`effowt.config.parse_tracker_overrides`) change the run's tracker settings;
    ``max_dets`` is one of them, set one way (here, or in ``tracker_overrides``, not
    both). Out-of-range values are a ConfigError before any work.
    ``texts``: label every track with one of them through the run's VLM text tower
    (:mod:`effowt.tracking.labels`; ConfigError before any work for a backbone without
    one), each text put in ``prompt``.
    ``batch_frames`` (frames per model batch), ``precision`` (``fp32``, ``bf16``,
    ``fp16``), ``profile`` (time the model's stages), ``image_size`` (the model input's
    long side; None: the run's ``model.image_size``) and ``threads`` (torch intra-op
    CPU threads per tracking process; None: the default of :mod:`effowt.threads`; it
    sets this process's count when the videos are tracked in-process). Under torchrun
    the videos are sharded across the ranks (module docstring).
    """
    from effowt.data.detections import read_detections
    from effowt.data.sources import open_source, source_id

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
    # the one device check of the run; under torchrun cuda means cuda:LOCAL_RANK
    process_device = local_device(device) if launched() and env_world_size() > 1 else resolve_device(device)
    root = None if frames_root is None else str(frames_root)
    run = None if run_dir is None else str(run_dir)
    overrides = _with_max_dets(tracker_overrides or {}, max_dets)
    # the run's config: read once here, overrides applied once; every tracking process builds from it
    config = with_tracker_overrides(load_config(str(resolve_run_dir(run) / CONFIG_FILE)), overrides)
    if texts is not None:
        text_tower_config(config.model.backbone)
    videos = open_source(source, root)  # fails early and clearly on a bad source
    if isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
        check_outside(out_dir, source, "the source folder")
    settings = {"partial_format": PARTIAL_FORMAT, "source": source_id(source),
                "frames_root": None if root is None else str(Path(root).resolve()),
                "weights": None if run is None else str(Path(run).resolve()),
                "max_dets": max_dets, "render": render, "tracker_overrides": overrides or None,
                "texts": texts, "prompt": prompt if texts is not None else None,
                "detections": None if detections is None else str(Path(detections).resolve()),
                "precision": None if precision == "fp32" else precision, "image_size": image_size}
    external = None if detections is None else read_detections(detections, videos)
    job = TrackJob(str(source), root, str(out_dir), run, config, overrides, settings,
                   device, str(process_device), workers=workers, resume=resume, render=render,
                   profile=profile, batch_frames=batch_frames, precision=precision, threads=threads,
                   image_size=image_size, detections=external, texts=texts, prompt=prompt)
    return run_job(job, videos)


def _with_max_dets(overrides: dict[str, Any], max_dets: int | None) -> dict[str, Any]:
    """``overrides`` with the ``max_dets`` cap put among them: one way to set it, a
    ConfigError when it is given both ways."""
    if max_dets is None:
        return dict(overrides)
    if "max_dets" in overrides:
        raise ConfigError(f"max_dets={max_dets} and tracker_overrides max_dets={overrides['max_dets']}: "
                          "set the cap one way (max_dets, --max-dets on the command line)")
    return {**overrides, "max_dets": int(max_dets)}


def run_job(job: TrackJob, videos: list[VideoSource]) -> TrackReport:
    """Track ``videos`` (the job's source, opened) as ``job`` says: rank 0 (or the only
    process) holds and prepares the output folder, every process tracks its share, rank
    0 merges. Raises :class:`~effowt.errors.Interrupted` on SIGINT / SIGTERM."""
    with process_group("gloo") as (rank, world), contextlib.ExitStack() as held:
        if rank == 0:
            setup = _first_rank_setup(job, videos, held, world)
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
                outcomes = _track_ordinals(job, mine, videos)
                per_rank = [len(outcomes)]
            else:
                outcomes, per_rank = _track_rank_share(job, mine, videos, rank, world)
                if rank != 0:
                    return TrackReport(videos=outcomes, boxes=0, speed={}, written=False, rank=rank)
            report = out.merge([*done.values(), *outcomes], wall_s=time.perf_counter() - start,
                               device=job.device, workers=min(job.workers, max(1, len(mine))),
                               videos_per_rank=per_rank,
                               tracker={"overrides": job.overrides,
                                        "tracker": dataclasses.asdict(job.config.tracker)})
        except KeyboardInterrupt as err:
            kept = sum(1 for i, v in enumerate(videos) if out.finished(v, i) is not None)
            raise Interrupted(
                getattr(err, "signum", signal.SIGINT),
                f"{kept} of {len(videos)} video(s) finished and kept in {out.path / PARTIAL_DIR}; "
                f"results.json was not updated; run the same command with --resume to track the rest",
            ) from None
    report.resumed = len(done)
    return report


def _first_rank_setup(job: TrackJob, videos: list[VideoSource], held: contextlib.ExitStack,
                      world: int) -> tuple[dict[int, VideoOutcome], OutputFolder] | str:
    """On rank 0 (or the only process): prepare and lock the output folder (the lock is
    held by ``held``), start afresh or resume. Returns the finished videos and the
    folder, or under torchrun the error message (the other ranks raise it too)."""
    try:
        out = held.enter_context(OutputFolder.hold(job.out_dir))
        return out.start(job.settings, videos, job.resume), out
    except EffOWTError as err:
        if world > 1:
            return str(err)
        raise


def _track_rank_share(job: TrackJob, mine: list[int], videos: list[VideoSource], rank: int,
                      world: int) -> tuple[list[VideoOutcome], list[int]]:
    """Track this rank's videos, then gather every rank's outcomes on rank 0: (all
    outcomes, videos per rank) there, (own outcomes, []) elsewhere. An error on any
    rank (e.g. an unwritable output) is raised on that rank and on rank 0, after the
    gather, so that no rank waits for one that stopped."""
    try:
        outcomes, error = _track_ordinals(job, mine, videos), None
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


def _track_ordinals(job: TrackJob, ordinals: list[int], videos: list[VideoSource]) -> list[VideoOutcome]:
    """Track the videos at ``ordinals`` in this process or in ``job.workers`` spawned ones."""
    if not ordinals:
        return []
    workers = min(job.workers, len(ordinals))
    if workers == 1:
        return _track_shard(job, 0, 1, ordinals, videos)
    ctx = multiprocessing.get_context("spawn")
    before = set(multiprocessing.active_children())
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_ignore_sigint) as pool:
        try:
            futures = [pool.submit(_track_shard, job, shard, workers, ordinals) for shard in range(workers)]
            return [o for f in futures for o in f.result()]
        except KeyboardInterrupt:
            for process in set(multiprocessing.active_children()) - before:
                process.terminate()
            raise


def _track_shard(job: TrackJob, shard: int, workers: int, ordinals: list[int],
                 videos: list[VideoSource] | None = None) -> list[VideoOutcome]:
    """One worker: load the model from ``job.config`` and track every ``workers``-th video
    of ``ordinals`` (positions in the source; ``videos``: the already opened source,
    in-process only; a spawned worker opens it again)."""
    from effowt.data.sources import open_source
    from effowt.threads import set_threads

    if videos is None:
        videos = open_source(job.source, job.frames_root)
    tracker = Tracker.from_pretrained(job.run_dir, device=job.process_device, time_stages=job.profile,
                                      config=job.config, texts=job.texts, prompt=job.prompt,
                                      precision=job.precision, image_size=job.image_size)
    set_threads(job.threads, tracker.model, workers * int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    mine = [(i, videos[i]) for i in ordinals[shard::workers]]
    return track_videos(tracker, mine, job.out_dir, job.render, position=shard, batch_frames=job.batch_frames,
                        detections=job.detections)


def _ignore_sigint() -> None:
    """Worker initializer: Ctrl-C reaches the whole process group; the parent alone
    handles it (and stops the workers)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
