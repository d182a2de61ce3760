"""Annotated videos and contact sheets: boxes, track ids and labels drawn on frames.

Frames are drawn at the source's resolution, enlarged by the smallest integer
factor that makes the long side at least :data:`MIN_LONG_SIDE` px when the source
is smaller (nearest-neighbour, so pixels stay sharp); line width and font size
follow the drawn size, so ids and labels stay legible. Each track id gets one
colour for the whole video (golden-ratio hue steps, so neighbouring ids differ).
Frames are encoded with H.264 (libx264) when the local FFmpeg has it, MPEG-4 Part 2
otherwise; both go in an ``.mp4`` container. A contact sheet
(:func:`contact_sheet`) is a PNG of a few evenly spaced drawn frames side by side.
"""

from __future__ import annotations

import colorsys
import io
import math
import os
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from effowt.fileio import atomic_write_bytes
from effowt.tracking.association import Track

_CODECS = ("libx264", "mpeg4")
MIN_LONG_SIDE = 512
SHEET_FRAMES = 4
SHEET_TILE_LONG_SIDE = 384


def track_color(track_id: int) -> tuple[int, int, int]:
    """A bright RGB colour that depends only on the track id."""
    hue = (track_id * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return int(255 * r), int(255 * g), int(255 * b)


def render_scale(height: int, width: int, min_long_side: int = MIN_LONG_SIDE) -> int:
    """The integer factor frames of this size are enlarged by: 1 when the long side is
    already ``min_long_side`` or more."""
    return max(1, math.ceil(min_long_side / max(1, height, width)))


def track_text(track: Track) -> str:
    """What is written at a box: the id, then the label when the track has one."""
    return f"{track.track_id}" if track.label is None else f"{track.track_id} {track.label}"


def draw_tracks(frame: np.ndarray, tracks: Iterable[Track], scale: int | None = None) -> np.ndarray:
    """A drawn copy of uint8[H, W, 3] RGB ``frame``: enlarged ``scale`` times (default
    :func:`render_scale`), each track's xyxy box (frame pixels) in its colour with its
    id and label on a filled tag above the box (below it at the top edge)."""
    height, width = frame.shape[:2]
    scale = render_scale(height, width) if scale is None else scale
    image = Image.fromarray(frame)
    if scale != 1:
        image = image.resize((width * scale, height * scale), Image.NEAREST)
    long_side = max(image.size)
    line = max(2, round(long_side / 320))
    font = ImageFont.load_default(size=max(12, round(long_side / 40)))
    draw = ImageDraw.Draw(image)
    for t in tracks:
        color = track_color(t.track_id)
        x1, y1, x2, y2 = (float(v) * scale for v in t.box)
        draw.rectangle([x1, y1, x2, y2], outline=color, width=line)
        text = track_text(t)
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        tag_h = bottom - top + 2 * line
        ty = y1 - tag_h if y1 - tag_h >= 0 else y1
        draw.rectangle([x1, ty, x1 + right - left + 2 * line, ty + tag_h], fill=color)
        draw.text((x1 + line - left, ty + line - top), text, fill=(0, 0, 0), font=font)
    return np.asarray(image)


def sheet_indices(num_frames: int, count: int = SHEET_FRAMES) -> list[int]:
    """Evenly spaced frame indices (first and last included) for a contact sheet."""
    count = min(count, num_frames)
    return [round(i * (num_frames - 1) / max(1, count - 1)) for i in range(count)]


def contact_sheet(frames: list[np.ndarray], path: str | os.PathLike,
                  tile_long_side: int = SHEET_TILE_LONG_SIDE) -> None:
    """Write drawn frames side by side as one PNG, each shrunk (never enlarged) to a
    long side of ``tile_long_side`` px, with a 4 px gap; atomically."""
    tiles = []
    for frame in frames:
        tile = Image.fromarray(frame)
        factor = tile_long_side / max(tile.size)
        if factor < 1:
            tile = tile.resize((round(tile.width * factor), round(tile.height * factor)), Image.LANCZOS)
        tiles.append(tile)
    gap = 4
    sheet = Image.new("RGB", (sum(t.width for t in tiles) + gap * (len(tiles) - 1),
                              max(t.height for t in tiles)), (255, 255, 255))
    x = 0
    for tile in tiles:
        sheet.paste(tile, (x, 0))
        x += tile.width + gap
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG", optimize=True)
    atomic_write_bytes(path, buffer.getvalue())


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
