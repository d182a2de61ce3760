"""Writes an encoded video stream to standard output, as a camera or ffmpeg would:
``python stream_writer.py FORMAT FPS PACE REPEAT FRAME.png ...`` (a test helper).

The frames are encoded losslessly (H.264 RGB, crf 0) in FORMAT (``mpegts``,
``matroska``); with PACE 1 each frame is written at its time (FPS frames per second);
the frame list is sent REPEAT times. Ends by itself; a reader that goes away ends it too.
"""

import sys
import time

import av
import numpy as np
from PIL import Image


class _Pipe:
    """Standard output without ``seek``, so the muxer streams."""

    def write(self, data: bytes) -> int:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return len(data)


def main(fmt: str, fps: int, pace: bool, repeat: int, files: list[str]) -> None:
    frames = [np.array(Image.open(f).convert("RGB")) for f in files]
    start = time.monotonic()
    with av.open(_Pipe(), "w", format=fmt) as container:
        stream = container.add_stream("libx264rgb", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "rgb24"
        stream.options = {"crf": "0", "preset": "ultrafast", "threads": "1", "tune": "zerolatency"}
        for n in range(repeat * len(frames)):
            if pace:
                time.sleep(max(0.0, start + n / fps - time.monotonic()))
            for packet in stream.encode(av.VideoFrame.from_ndarray(frames[n % len(frames)], format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


if __name__ == "__main__":
    try:
        main(sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", int(sys.argv[4]), sys.argv[5:])
    except (BrokenPipeError, av.FFmpegError):
        sys.exit(0)
