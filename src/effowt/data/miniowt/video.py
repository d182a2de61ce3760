"""Lossless, reproducible mp4 encoding of MiniOWT videos (H.264 RGB, ``crf=0``):
decoding gives back exactly the PNG frames."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from effowt.fileio import atomic_write_bytes

VIDEO_FPS = 10


def write_video(path: str | os.PathLike, frames: list[np.ndarray], fps: int = VIDEO_FPS) -> None:
    """Write RGB uint8 frames [H, W, 3] losslessly (H.264 RGB, crf 0) and reproducibly."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4", options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream("libx264rgb", rate=fps)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "rgb24"
        stream.options = {"crf": "0", "preset": "ultrafast", "threads": "1"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    atomic_write_bytes(path, buf.getvalue())

