"""Video sources: what ``effowt track`` reads.

:func:`open_source` picks the reader from the path:

- a video file (``.mp4 .avi .mkv .mov .webm``), decoded with PyAV one frame at
  a time (memory does not grow with the video's length);
- a folder of frames (``.jpg .jpeg .png .bmp``), sorted naturally
  (``frame2`` before ``frame10``); a folder holding no images but sub-folders
  of frames gives one video per sub-folder;
- a TAO json split: every video, frames resolved relative to ``frames_root``
  (default: the json's folder).

Each :class:`VideoSource` yields :class:`Frame` (``index``, ``image_id``,
``image``: uint8[H, W, 3] RGB).

Live input (:func:`is_stream` says which names are streams) is a
:class:`StreamSource`: ``rtsp:// rtmp:// http(s)://`` (and ``udp:// tcp:// srt://``)
URLs, ``-`` (an encoded stream on standard input), ``/dev/videoN`` (V4L2) and
``FORMAT:TARGET`` for an FFmpeg input device PyAV offers (``v4l2:/dev/video0``,
``avfoundation:0``, ``lavfi:testsrc``). It is read once, frame by frame, as the
frames arrive; see the class for stopping, stalls and ``realtime``.

Errors (:class:`~effowt.errors.DataError`, naming the file): the path does not
exist; a video whose header cannot be read or with no decodable frame (empty,
not a video, an mp4 cut before its index) -- raised by :func:`open_source`; a
video whose data ends before the frame count its header declares (truncated; raised
when iteration reaches the cut, as streaming cannot know it earlier; containers
without a frame count, e.g. mkv / webm, simply end there); an empty folder; a
TAO split referencing a frame file that does not exist (checked when the split
is opened, before any work is done).

Warnings (``UserWarning``; the frame is skipped and the video goes on): a video
packet that is present but fails to decode (a bad frame inside the video), an
unreadable image in a folder or TAO split. A folder or TAO video whose frames
change size warns once, naming the first frame that differs (it is tracked). A frame's
``index`` is its position in the folder / TAO video (so indices stay aligned
with the files when one is skipped) and the count of decoded frames for a video
file.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import re
import signal
import struct
import tempfile
import threading
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from effowt.data.tao import TaoDataset, TaoVideo
from effowt.errors import DataError, Interrupted

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


@dataclass(frozen=True)
class Frame:
    """One frame: ``index`` in its video, TAO ``image_id`` (None outside TAO), RGB uint8[H, W, 3]."""

    index: int
    image_id: int | None
    image: np.ndarray


def load_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as RGB uint8[H, W, 3]; DataError naming the file if missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: image file not found")
    try:
        with Image.open(path) as img:
            if img.mode.startswith("I"):  # 16-bit grey (I;16*) or 32-bit int read from a 16-bit file
                return _gray16_to_rgb(np.asarray(img))
            return np.array(img.convert("RGB"))
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise DataError(f"{path}: unreadable image: {err}") from None


def _gray16_to_rgb(values: np.ndarray) -> np.ndarray:
    """16-bit grey values (0..65535) as RGB uint8[H, W, 3] at their real range; PIL's
    ``convert("RGB")`` clips them at 255 (a white frame)."""
    grey = (values.astype(np.float64).clip(0, 65535) / 257.0).round().astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def natural_key(name: str) -> list[int | str]:
    """Sort key that orders embedded numbers numerically (``frame2`` < ``frame10``)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


class VideoSource(ABC):
    """A video to track: ``name``, ``video_id`` (TAO id or None), ``len()`` and frame iteration."""

    name: str
    video_id: int | None

    @abstractmethod
    def __len__(self) -> int:
        """Number of frames (for video files: from the header, possibly estimated)."""

    @abstractmethod
    def __iter__(self) -> Iterator[Frame]:
        """Frames in order; a fresh pass each call."""


# -- the ids a source's outputs carry ------------------------------------------------

SYNTHETIC_IMAGE_STRIDE = 1_000_000


def output_video_id(video: VideoSource, ordinal: int) -> int:
    """The ``video_id`` the outputs of the video at position ``ordinal`` in its source
    carry: its TAO id, else (video files, frame folders, streams) a synthetic one,
    ``ordinal + 1`` (our choice; the paper is silent)."""
    return ordinal + 1 if video.video_id is None else int(video.video_id)


def output_image_id(video_id: int, frame: Frame) -> int:
    """The ``image_id`` a frame's outputs carry: its TAO id, else the synthetic
    ``video_id * SYNTHETIC_IMAGE_STRIDE + frame index + 1`` (unique over the source
    while a video has fewer than a million frames; our choice)."""
    return video_id * SYNTHETIC_IMAGE_STRIDE + frame.index + 1 if frame.image_id is None else int(frame.image_id)



def _skip_warning(path: Path | str, what: str, err: Exception) -> None:
    warnings.warn(f"{path}: skipping {what}: {err}", UserWarning, stacklevel=3)


class VideoFileSource(VideoSource):
    """A video file decoded with PyAV, streamed frame by frame.

    The constructor reads the header and decodes the first frame, so an empty
    or corrupt file fails here with a DataError rather than mid-run.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        import av

        self.path = Path(path)
        self.name = self.path.stem
        self.video_id = None
        if not self.path.is_file():
            raise DataError(f"{self.path}: video file not found")
        try:
            with av.open(str(self.path)) as container:
                if not container.streams.video:
                    raise DataError(f"{self.path}: no video stream")
                stream = container.streams.video[0]
                self._num_frames = int(stream.frames or 0)
                if not self._num_frames and stream.duration and stream.average_rate:
                    seconds = stream.duration * stream.time_base
                    self._num_frames = int(round(float(seconds * stream.average_rate)))
                first = next(container.decode(stream), None)
        except av.FFmpegError as err:
            raise DataError(f"{self.path}: cannot read video (corrupt or truncated?): {err}") from None
        if first is None:
            raise DataError(f"{self.path}: video has no decodable frame (empty or truncated)")
        self._num_frames = max(self._num_frames, 1)

    def __len__(self) -> int:
        return self._num_frames

    def __iter__(self) -> Iterator[Frame]:
        import av

        index = packets = 0
        try:
            container = av.open(str(self.path))
        except av.FFmpegError as err:
            raise DataError(f"{self.path}: cannot read video: {err}") from None
        with container:
            stream = container.streams.video[0]
            declared = int(stream.frames or 0)
            demuxer = container.demux(stream)
            while True:
                try:
                    packet = next(demuxer)
                except StopIteration:
                    break
                except av.FFmpegError as err:
                    raise DataError(f"{self.path}: video breaks off after {index} frames: {err}") from None
                if packet.size:
                    packets += 1
                try:
                    decoded = packet.decode()
                except av.FFmpegError as err:
                    _skip_warning(self.path, f"an undecodable packet after frame {index}", err)
                    continue
                for frame in decoded:
                    yield Frame(index, None, frame.to_ndarray(format="rgb24"))
                    index += 1
        if declared and packets < declared:
            raise DataError(
                f"{self.path}: truncated: the file ends after {packets} of the {declared} frames "
                "its header declares"
            )


class FrameFolderSource(VideoSource):
    """A folder of image files, read in natural order."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.name = self.folder.name
        self.video_id = None
        self.files = frame_files(self.folder)
        if not self.files:
            raise DataError(f"{self.folder}: no image files ({', '.join(IMAGE_EXTENSIONS)}) in folder")

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self) -> Iterator[Frame]:
        return _read_frames((index, None, path) for index, path in enumerate(self.files))


def frame_files(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, naturally sorted."""
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    return sorted(files, key=lambda p: natural_key(p.name))


class TaoVideoSource(VideoSource):
    """One video of a TAO split; frames carry their TAO ``image_id``."""

    def __init__(self, video: TaoVideo) -> None:
        self.video = video
        self.name = video.name
        self.video_id = video.id

    def __len__(self) -> int:
        return len(self.video.frames)

    def __iter__(self) -> Iterator[Frame]:
        return _read_frames((index, f.image_id, f.path) for index, f in enumerate(self.video.frames))


def _read_frames(items: Iterator[tuple[int, int | None, Path]]) -> Iterator[Frame]:
    """Frames of one video from ``(index, image_id, path)``: an unreadable image is
    skipped with a warning; the first frame whose size differs from the first frame's
    is named in one warning (boxes stay in each frame's own pixels)."""
    first: tuple[int, ...] | None = None
    warned = False
    for index, image_id, path in items:
        try:
            image = load_rgb(path)
        except DataError as err:
            _skip_warning(path, "frame", err)
            continue
        if first is None:
            first = image.shape
        elif image.shape != first and not warned:
            warned = True
            warnings.warn(f"{path}: frame size {image.shape[1]}x{image.shape[0]} differs from the "
                          f"video's first frame ({first[1]}x{first[0]}); later size changes are "
                          "not reported, boxes are in each frame's own pixels", UserWarning, stacklevel=2)
        yield Frame(index, image_id, image)


def open_source(path: str | os.PathLike | VideoSource,
                frames_root: str | os.PathLike | None = None) -> list[VideoSource]:
    """Open a video file, a frame folder (or a folder of frame folders) or a TAO json split.

    ``frames_root`` applies to TAO json only (default: the json's folder).
    Returns one :class:`VideoSource` per video (an already opened source, e.g. a
    :class:`StreamSource`, is returned as it is). Raises DataError naming the
    path when it is missing, empty, unsupported or corrupt.
    """
    if isinstance(path, VideoSource):  # an opened source, e.g. a StreamSource
        return [path]
    if not str(path).strip():
        raise DataError("the source path is empty (it would mean the current folder); name a video file, "
                        "a folder of frames or a TAO json")
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.is_dir():
        if frame_files(path):
            return [FrameFolderSource(path)]
        subdirs = sorted((p for p in path.iterdir() if p.is_dir()), key=lambda p: natural_key(p.name))
        sources: list[VideoSource] = [FrameFolderSource(d) for d in subdirs if frame_files(d)]
        if not sources:
            raise DataError(f"{path}: folder holds no image files and no folders of frames")
        return sources
    suffix = path.suffix.lower()
    if suffix == ".json":
        dataset = TaoDataset(path, frames_root, require_gt=False)
        if not dataset.videos:
            raise DataError(f"{path}: TAO split has no videos")
        missing = dataset.missing_frames()
        if missing:
            raise DataError(
                f"{path}: {len(missing)} frame file(s) not found, first: {missing[0]} "
                f"(frames are resolved relative to {dataset.frames_root}; pass --frames-root, frames_root= in Python)"
            )
        return [TaoVideoSource(v) for v in dataset.videos]
    if suffix in VIDEO_EXTENSIONS:
        return [VideoFileSource(path)]
    raise DataError(
        f"{path}: unsupported input (expected a video {', '.join(VIDEO_EXTENSIONS)}, "
        "a folder of frames or a TAO .json)"
    )


# -- live streams -----------------------------------------------------------------

STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt")
DEVICE_FORMATS = ("v4l2", "video4linux2", "avfoundation", "dshow", "gdigrab", "x11grab", "kmsgrab",
                  "fbdev", "android_camera", "decklink", "lavfi")
STDIN = "-"
_V4L2_DEVICE = re.compile(r"/dev/video\d+")
_DEVICE_FORMAT = re.compile(r"([a-z][a-z0-9_]*):(.+)", re.DOTALL)
_MP4_HEAD_BOXES = (b"ftyp", b"free", b"skip", b"wide", b"pdin", b"uuid", b"styp", b"sidx")
_MAX_MP4_HEAD_BYTES = 16 << 20
_POLL_S = 0.05
logger = logging.getLogger("effowt")


def is_stream(source: str | os.PathLike | VideoSource) -> bool:
    """Whether ``source`` names live input rather than a file or folder: ``-`` (standard
    input), a ``rtsp rtmp http(s) udp tcp srt`` URL, ``/dev/videoN`` or
    ``FORMAT:TARGET`` with FORMAT one of :data:`DEVICE_FORMATS` (an existing file of that
    name is a file)."""
    if not isinstance(source, str):
        return isinstance(source, StreamSource)
    if source == STDIN or _V4L2_DEVICE.fullmatch(source):
        return True
    scheme, sep, _ = source.partition("://")
    if sep and scheme.lower() in STREAM_SCHEMES:
        return True
    match = _DEVICE_FORMAT.fullmatch(source)
    return bool(match) and match.group(1) in DEVICE_FORMATS and not Path(source).exists()


def source_id(source: str | os.PathLike | VideoSource) -> str:
    """What a run records as its source (``partial/settings.json``): a stream's name as
    given, a path made absolute."""
    if isinstance(source, StreamSource):
        return source.url
    if isinstance(source, str) and is_stream(source):
        return source
    return str(Path(source).resolve())


def stream_name(url: str) -> str:
    """A stream's video name: ``stdin``, the device (``video0``), or the URL path's last
    part without its extension (``rtsp://cam/live`` -> ``live``; the host when none)."""
    if url == STDIN:
        return "stdin"
    if _V4L2_DEVICE.fullmatch(url):
        return Path(url).name
    scheme, sep, rest = url.partition("://")
    if sep:
        host, _, path = rest.split("?", 1)[0].partition("/")
        return Path(path).stem or host.rsplit("@", 1)[-1] or scheme
    fmt, _, target = url.partition(":")
    return f"{fmt}-{Path(target).name or target}"


class StreamSource(VideoSource):
    """Live input, decoded with PyAV in a background thread, tracked as it arrives.

    One pass only (a stream cannot be re-read). The constructor opens the stream and
    waits for its first frame: a stream that cannot be opened, or sends no frame within
    ``timeout_s``, is a DataError naming it. Memory is bounded: at most
    ``buffer_frames`` decoded frames wait (1 with ``realtime``); without ``realtime``
    the decoder waits for the tracker, with it the stream is read at its own frame
    rate (like ``ffmpeg -re``) and a frame the tracker is not ready for is dropped in
    favour of the newer one (``dropped`` counts them; kept frames keep their position
    in the stream as ``index``).

    Iteration ends, and the video then finishes normally, when the stream ends, after
    ``max_frames`` tracked frames, after ``duration_s`` seconds of tracking, on the
    first SIGINT or SIGTERM while it runs (``stopped_by`` says which; a second signal
    interrupts as usual), or when the stream stalls (no frame for ``timeout_s``) or
    breaks off (``error`` then holds a one-line message naming the stream).

    ``-`` reads standard input (``sys.stdin.buffer``): any streamable container
    (MPEG-TS, Matroska, fragmented or fast-start mp4, ...) is decoded as it arrives; an
    mp4 whose index is at its end (FFmpeg's default) cannot be decoded before it ends,
    so it is first copied to a temporary file.
    """

    video_id = None

    def __init__(self, url: str, *, timeout_s: float = 10.0, max_frames: int | None = None,
                 duration_s: float | None = None, realtime: bool = False, buffer_frames: int = 8) -> None:
        if not (math.isfinite(timeout_s) and timeout_s > 0):
            raise ValueError(f"timeout_s must be a finite number > 0, got {timeout_s}")
        if max_frames is not None and max_frames < 1:
            raise ValueError(f"max_frames must be >= 1, got {max_frames}")
        if duration_s is not None and not (math.isfinite(duration_s) and duration_s > 0):
            raise ValueError(f"duration_s must be a finite number > 0, got {duration_s}")
        if buffer_frames < 1:
            raise ValueError(f"buffer_frames must be >= 1, got {buffer_frames}")
        self.url, self.name = url, stream_name(url)
        self.timeout_s, self.max_frames, self.duration_s, self.realtime = timeout_s, max_frames, duration_s, realtime
        self.fps: float | None = None
        self.frames = self.dropped = self.skipped_packets = 0
        self.stopped_by: str | None = None
        self.error: str | None = None
        self._format, self._target = _stream_format(url)
        self._queue: queue.Queue[tuple[Any, ...]] = queue.Queue(maxsize=1 if realtime else buffer_frames)
        self._stop = threading.Event()
        self._heartbeat = time.monotonic()
        self._opened = False
        self._signal: int | None = None
        self._restore_signals: Callable[[], None] | None = None
        self._used = False
        self._thread = threading.Thread(target=self._decode, name=f"effowt-stream-{self.name}", daemon=True)
        self._thread.start()
        first = self._next(waiting_for="its first frame")
        if first[0] != "frame":
            self.close()
            raise DataError(self.error or f"{url}: stream has no frames")
        self._first: tuple[Any, ...] | None = first

    @property
    def _open_timeout_s(self) -> float:
        """Wall time allowed for opening and probing (see ``_open``)."""
        return 2 * self.timeout_s + 1.0

    def __len__(self) -> int:
        """Unknown for a stream: ``max_frames`` when given, else 0."""
        return self.max_frames or 0

    def __str__(self) -> str:
        return self.url

    def __iter__(self) -> Iterator[Frame]:
        if self._used:
            raise DataError(f"{self.url}: a stream is read once; open it again to track it again")
        self._used = True
        self._restore_signals = self._catch_signals()
        logger.info("tracking %s as it arrives; Ctrl-C stops it and keeps the results", self.url)
        if self.realtime and not self._queue.empty():
            self._first = None  # held since the stream was opened; a newer frame waits
            self.dropped += 1
        start = time.monotonic()
        try:
            while True:
                item, self._first = self._first or self._next(waiting_for="the next frame"), None
                if item[0] != "frame":
                    break
                self.frames += 1
                yield Frame(item[1], None, item[2])
                if self._signal is not None:
                    self.stopped_by = signal.Signals(self._signal).name
                elif self.max_frames is not None and self.frames >= self.max_frames:
                    self.stopped_by = "--max-frames"
                elif self.duration_s is not None and time.monotonic() - start >= self.duration_s:
                    self.stopped_by = "--duration"
                if self.stopped_by:
                    break
        finally:
            self.close()

    def _next(self, waiting_for: str) -> tuple[Any, ...]:
        """The next item from the decoder: ``("frame", index, image)``, ``("end",)`` or
        ``("error", message)``; ``error`` after ``timeout_s`` without data (a stall), here
        or in FFmpeg (the decoder's ``("stalled",)``).

        While FFmpeg opens a URL or device (and probes it), its own timeouts end a silent
        stream (see ``_open``), so a probe that read part of a stream keeps it; the wait
        here is then only a backstop."""
        waited_from = time.monotonic()
        while True:
            try:
                item = self._queue.get(timeout=_POLL_S)
            except queue.Empty:
                own_io = self.url == STDIN or self._opened
                limit = self.timeout_s if own_io else self._open_timeout_s
                if time.monotonic() - max(waited_from, self._heartbeat) > limit:
                    self.error = self._stalled(waiting_for)
                    return ("error", self.error)
                continue
            if item[0] == "stalled":  # FFmpeg's own timeout, said with the frames tracked by now
                item = ("error", self._stalled(waiting_for))
            if item[0] == "error":
                self.error = item[1]
            return item

    def _stalled(self, waiting_for: str) -> str:
        return (f"{self.url}: stream stalled: no data for {self.timeout_s:g} s (--stream-timeout) "
                f"waiting for {waiting_for}, after {self.frames} tracked frame(s)")

    def close(self) -> None:
        """Stop the decoder thread (it ends at its next frame or read; a read blocked on a
        silent stream ends with the process: the thread is a daemon) and give SIGINT /
        SIGTERM back to their previous handlers."""
        if self._restore_signals is not None:
            self._restore_signals()
            self._restore_signals = None
        self._stop.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)

    def __enter__(self) -> StreamSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _catch_signals(self) -> Callable[[], None]:
        """While the stream is tracked, the first SIGINT / SIGTERM stops it after the
        current frame; a second one interrupts (:class:`Interrupted`). Main thread only."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        handled = (signal.SIGINT, signal.SIGTERM)

        def stop(signum: int, frame: object) -> None:
            if self._signal is not None:
                raise Interrupted(signum)
            self._signal = signum
            logger.info("stopping the stream after this frame (%s again aborts it)",
                        signal.Signals(signum).name)

        previous = {s: signal.signal(s, stop) for s in handled}

        def restore() -> None:
            for s, handler in previous.items():
                signal.signal(s, handler)

        return restore

    # -- decoder thread --

    def _put(self, item: tuple[Any, ...], droppable: bool = False) -> None:
        """Queue ``item``; with ``realtime`` a frame replaces the one still waiting."""
        while not self._stop.is_set():
            if droppable and self.realtime:
                try:
                    self._queue.put_nowait(item)
                    return
                except queue.Full:
                    try:
                        self._queue.get_nowait()
                        self.dropped += 1
                    except queue.Empty:
                        pass
                continue
            try:
                self._queue.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue

    def _decode(self) -> None:
        import av

        index = 0
        try:
            with self._open() as container:
                if not container.streams.video:
                    self._put(("error", f"{self.url}: no video stream"))
                    return
                # opening read data: the wait for the first frame counts from here, not from
                # the call (heartbeat before _opened, which switches the wait to timeout_s)
                self._beat()
                self._opened = True
                stream = container.streams.video[0]
                rate = stream.average_rate or stream.guessed_rate
                self.fps = float(rate) if rate else None
                clock: tuple[float, float] | None = None
                for packet in container.demux(stream):
                    self._beat()
                    try:
                        decoded = packet.decode()
                    except av.FFmpegError:
                        self.skipped_packets += 1
                        continue
                    for frame in decoded:
                        if self._stop.is_set():
                            return
                        if self.realtime and frame.time is not None:
                            clock = clock or (frame.time, time.monotonic())
                            self._stop.wait(max(0.0, frame.time - clock[0] - (time.monotonic() - clock[1])))
                        self._beat()
                        self._put(("frame", index, frame.to_ndarray(format="rgb24")), droppable=True)
                        index += 1
        except DataError as err:
            self._put(("error", str(err)))
            return
        except (av.ExitError, av.TimeoutError):  # FFmpeg's own timeouts (see _open)
            self._put(("stalled",))
            return
        except (av.FFmpegError, OSError) as err:
            what = "cannot open stream" if index == 0 else f"stream broke off after {index} frame(s)"
            self._put(("error", f"{self.url}: {what}: {err}"))
            return
        except Exception as err:  # a bug here: end the wait for frames at once, keep the traceback
            self._put(("error", f"{self.url}: the stream's decoder failed after {index} frame(s): {err!r}"))
            raise
        self._put(("end",))

    def _open(self) -> Any:
        """The opened container. Two timeouts end a silent stream, our choices: a network
        read with no data for ``timeout_s`` fails with ETIMEDOUT (FFmpeg's ``rw_timeout``),
        which ends a probe with the packets it read; PyAV's interrupt covers what has no
        network read (devices): ``timeout_s`` per packet read, and ``2 * timeout_s + 1`` for
        opening and probing, whose wall time includes decoding the probed frames (on a busy
        machine that alone can take ``timeout_s`` while data still flows)."""
        import av

        timeout = (self._open_timeout_s, self.timeout_s)
        if self.url == STDIN:
            return av.open(self._stdin(), timeout=timeout)
        if self._format is not None and not _has_format(self._format):
            raise DataError(f"{self.url}: the FFmpeg inside PyAV has no {self._format!r} input device; "
                            "install PyAV built on an FFmpeg with it (pip install av --no-binary av)")
        return av.open(self._target, format=self._format, timeout=timeout,
                       options={"rw_timeout": str(round(self.timeout_s * 1e6))})

    def _stdin(self) -> Any:
        """Standard input as a file-like object PyAV reads (see the class docstring)."""
        import sys

        raw = sys.stdin.buffer
        read = getattr(raw, "read1", raw.read)
        reader = _PipeReader(read, self._beat)
        head = reader.peek_mp4_head()
        if head is None or head != b"mdat":
            return reader
        logger.info("%s: an mp4 with its index at the end cannot be decoded before it ends: reading it "
                    "whole first (pipe MPEG-TS or fragmented mp4 to track frames as they arrive)", self.url)
        spool = tempfile.TemporaryFile(prefix="effowt-stdin-")
        while chunk := reader.read(1 << 20):
            spool.write(chunk)
        spool.seek(0)
        return spool

    def _beat(self) -> None:
        self._heartbeat = time.monotonic()


class _PipeReader:
    """A non-seekable reader over ``read(n)`` that can look at an mp4's first boxes and
    give them back: only ``read`` is offered, so FFmpeg never tries to seek."""

    def __init__(self, read: Callable[[int], bytes], beat: Callable[[], None]) -> None:
        self._read, self._beat = read, beat
        self._head = b""

    def _fill(self, size: int) -> bool:
        while len(self._head) < size:
            chunk = self._read(size - len(self._head))
            if not chunk:
                return False
            self._beat()
            self._head += chunk
        return True

    def peek_mp4_head(self) -> bytes | None:
        """None unless the input starts like an mp4 (``ftyp``); else the type of the first
        top-level box after the small header boxes (``moov``, ``moof``, ``mdat`` ...)."""
        if not self._fill(8) or self._head[4:8] != b"ftyp":
            return None
        offset = 0
        while offset < _MAX_MP4_HEAD_BYTES and self._fill(offset + 16):
            size, kind = struct.unpack(">I4s", self._head[offset:offset + 8])
            if size == 1:
                size = struct.unpack(">Q", self._head[offset + 8:offset + 16])[0]
            if kind not in _MP4_HEAD_BOXES or size < 8:
                return kind
            offset += size
        return None

    def read(self, size: int = -1) -> bytes:
        if self._head:
            size = len(self._head) if size < 0 else size
            out, self._head = self._head[:size], self._head[size:]
            return out
        chunk = self._read(size if size > 0 else 1 << 16)
        if chunk:
            self._beat()
        return chunk


def _stream_format(url: str) -> tuple[str | None, str]:
    """``(FFmpeg input format or None, what to open)`` of a stream name."""
    if _V4L2_DEVICE.fullmatch(url):
        return "v4l2", url
    match = _DEVICE_FORMAT.fullmatch(url)
    if match and match.group(1) in DEVICE_FORMATS and "://" not in url:
        return match.group(1), match.group(2)
    return None, url


def _has_format(name: str) -> bool:
    import av

    aliases = {"v4l2": ("v4l2", "video4linux2"), "video4linux2": ("v4l2", "video4linux2")}.get(name, (name,))
    return any(a in av.formats_available for a in aliases)
