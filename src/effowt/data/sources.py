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

import os
import re
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from effowt.data.tao import TaoDataset, TaoVideo
from effowt.errors import DataError

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


def open_source(path: str | os.PathLike, frames_root: str | os.PathLike | None = None) -> list[VideoSource]:
    """Open a video file, a frame folder (or a folder of frame folders) or a TAO json split.

    ``frames_root`` applies to TAO json only (default: the json's folder).
    Returns one :class:`VideoSource` per video. Raises DataError naming the
    path when it is missing, empty, unsupported or corrupt.
    """
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
