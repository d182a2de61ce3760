"""Annotated videos: boxes and track ids drawn on frames, encoded with PyAV.

Each track id gets one colour for the whole video (golden-ratio hue steps, so
neighbouring ids differ). Frames are encoded with H.264 (libx264) when the local
FFmpeg has it, MPEG-4 Part 2 otherwise; both go in an ``.mp4`` container.
"""

from __future__ import annotations

import colorsys
import os
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np
from PIL import Image, ImageDraw

from effowt.tracking.association import Track

_CODECS = ("libx264", "mpeg4")


def track_color(track_id: int) -> tuple[int, int, int]:
    """A bright RGB colour that depends only on the track id."""
    hue = (track_id * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return int(255 * r), int(255 * g), int(255 * b)


def draw_tracks(frame: np.ndarray, tracks: Iterable[Track], width: int = 2) -> np.ndarray:
    """Return a copy of uint8[H, W, 3] RGB ``frame`` with each track's xyxy box and id."""
    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image)
    for t in tracks:
        color = track_color(t.track_id)
        x1, y1, x2, y2 = (float(v) for v in t.box)
        draw.rectangle([x1, y1, x2, y2], outline=color, width=width)
        label = str(t.track_id)
        left, top, right, bottom = draw.textbbox((x1, y1), label)
        ty = max(0.0, y1 - (bottom - top) - 2)
        draw.rectangle([x1, ty, x1 + (right - left) + 4, ty + (bottom - top) + 2], fill=color)
        draw.text((x1 + 2, ty), label, fill=(0, 0, 0))
    return np.asarray(image)


def _pick_codec() -> str:
    for name in _CODECS:
        try:
            av.codec.Codec(name, "w")
            return name
        except (av.FFmpegError, ValueError):
            continue
    raise RuntimeError(f"this FFmpeg build has none of the encoders {', '.join(_CODECS)}")


class VideoWriter:
    """Streams RGB frames into an mp4 file (``with VideoWriter(path, fps) as w: w.write(f)``).

    The size is taken from the first frame and rounded down to even numbers (the
    yuv420p pixel format needs them); later frames are cropped to it. The file is
    written under a temporary name and renamed on a clean close.
    """

    def __init__(self, path: str | os.PathLike, fps: float = 25.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.name}.tmp.mp4")
        self.fps = Fraction(fps).limit_denominator(1001)
        self.codec = _pick_codec()
        self._container: av.container.OutputContainer | None = None
        self._stream: av.video.stream.VideoStream | None = None
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        """Append one uint8[H, W, 3] RGB frame."""
        if self._container is None:
            height, width = frame.shape[0] // 2 * 2, frame.shape[1] // 2 * 2
            self._container = av.open(str(self._tmp), mode="w", format="mp4")
            self._stream = self._container.add_stream(self.codec, rate=self.fps)
            self._stream.width, self._stream.height = width, height
            self._stream.pix_fmt = "yuv420p"
        stream = self._stream
        frame = np.ascontiguousarray(frame[: stream.height, : stream.width])
        for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            self._container.mux(packet)
        self.frames += 1

    def close(self, keep: bool = True) -> None:
        """Flush and finish the file (``keep=False`` discards it)."""
        if self._container is not None:
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
            self._container = None
            if keep:
                os.replace(self._tmp, self.path)
        if self._tmp.exists():
            self._tmp.unlink()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close(keep=exc_type is None)
