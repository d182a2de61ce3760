"""One video's results while a run goes on: ``partial/<stem>.jsonl``.

JSON lines, appended while the video is tracked, so memory stays flat however
long the video is and a crash loses at most one chunk of frames::

    {"video": "clip 1", "video_id": 1, "synthetic_ids": true}              header
    {"frames": 100, "results": [TAO records], "mot": [MOT rows]}           one line per chunk
    {"done": true, "frames": 250, "boxes": 734, "max_track_id": 17,
     "timings": {stage: seconds}[, "texts": [...],
     "labels": {track_id: [text index, score]}]}                           end

``labels`` (with a vocabulary) is each track's final label over its whole life:
the merged outputs put it on every record of the track. So a chunk keeps its MOT
boxes as rows (``[frame, id, x, y, w, h, score]``, :func:`effowt.tracking.writers.mot_rows`),
and the MOT text is written once, at the merge, with the class column from ``labels``.

Each chunk line is flushed and fsynced when written. A file without its end
line is an unfinished video (crash, interrupt, error); ``effowt track --resume``
tracks such a video again from its first frame. Track ids are the video's own,
starting at 1.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from effowt.errors import DataError
from effowt.fileio import output_error

CHUNK_FRAMES = 100  # ~3 KB of results per frame: a chunk is a few hundred KB



# The layout of a chunk line, recorded in settings.json: resume refuses another layout at
# the start (format 1, before MOT rows, held MOT text).
PARTIAL_FORMAT = 2

class PartialWriter:
    """Writes one video's partial file: header now, a chunk every ``chunk_frames``
    frames, the end line in :meth:`finish`. Use as a context manager; leaving the
    block without :meth:`finish` leaves an unfinished file."""

    def __init__(self, path: str | os.PathLike, video: str, video_id: int, synthetic_ids: bool,
                 chunk_frames: int = CHUNK_FRAMES) -> None:
        if chunk_frames < 1:
            raise ValueError(f"chunk_frames must be >= 1, got {chunk_frames}")
        self.path = Path(path)
        self.chunk_frames = chunk_frames
        self.frames = self.boxes = self.max_track_id = 0
        self._results: list[dict[str, Any]] = []
        self._mot: list[list[float]] = []
        self._buffered = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "w", encoding="utf-8")
        except OSError as err:
            raise output_error(self.path, err) from None
        self._write({"video": video, "video_id": video_id, "synthetic_ids": synthetic_ids})

    def _write(self, obj: dict[str, Any]) -> None:
        try:
            self._file.write(json.dumps(obj, separators=(",", ":")) + "\n")
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as err:
            raise output_error(self.path, err) from None

    def add(self, records: list[dict[str, Any]], mot: list[list[float]]) -> None:
        """One frame's TAO records and MOT rows; writes a chunk when it is full."""
        self._results += records
        self._mot += mot
        self.frames += 1
        self.boxes += len(records)
        self.max_track_id = max([self.max_track_id, *(r["track_id"] for r in records)])
        self._buffered += 1
        if self._buffered >= self.chunk_frames:
            self._flush()

    def _flush(self) -> None:
        if self._buffered:
            self._write({"frames": self._buffered, "results": self._results, "mot": self._mot})
        self._results, self._mot, self._buffered = [], [], 0

    def finish(self, timings: dict[str, float], texts: list[str] | None = None,
               labels: dict[int, tuple[int, float]] | None = None) -> None:
        """Write the last chunk and the end line: the video is complete. ``labels``:
        ``{track_id: (index into texts, score)}``, each track's final label."""
        self._flush()
        end = {"done": True, "frames": self.frames, "boxes": self.boxes,
               "max_track_id": self.max_track_id, "timings": timings}
        if labels is not None:
            end.update(texts=texts, labels={str(k): list(v) for k, v in labels.items()})
        self._write(end)
        self.close()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> PartialWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class PartialVideo:
    """A partial file as read back: its header fields and end line (None: unfinished)."""

    path: Path
    video: str
    video_id: int
    synthetic_ids: bool
    end: dict[str, Any] | None

    @property
    def done(self) -> bool:
        return self.end is not None

    def chunks(self) -> Iterator[dict[str, Any]]:
        """The chunk lines in order (``frames``, ``results``, ``mot``), one in memory at a time."""
        with open(self.path, encoding="utf-8") as f:
            next(f)
            for n, line in enumerate(f, start=2):
                try:
                    chunk = json.loads(line)
                except json.JSONDecodeError:
                    chunk = None
                if isinstance(chunk, dict) and "done" in chunk:
                    return
                if not isinstance(chunk, dict) or not isinstance(chunk.get("mot"), list):
                    raise DataError(f"{self.path}:{n}: damaged partial file (or one an older effowt "
                                    "wrote); track the video again (run without --resume)")
                yield chunk


def read_partial(path: str | os.PathLike) -> PartialVideo | None:
    """Header and end line of a partial file; None when it is missing or has no
    readable header. A torn last line (a crash mid-write) counts as unfinished."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            header = json.loads(f.readline())
            last = _last_line(f)
        video, video_id, synthetic = header["video"], int(header["video_id"]), header["synthetic_ids"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        end = json.loads(last)
    except ValueError:
        end = None
    if not isinstance(end, dict) or end.get("done") is not True:
        end = None
    return PartialVideo(path, str(video), video_id, bool(synthetic), end)


def _last_line(f: Any, block: int = 1 << 16) -> bytes:
    """The last line of binary file ``f`` (without its newline), read from the end."""
    f.seek(0, os.SEEK_END)
    pos, data = f.tell(), b""
    while pos > 0 and data.rstrip(b"\n").count(b"\n") == 0:
        step = min(block, pos)
        pos -= step
        f.seek(pos)
        data = f.read(step) + data
    return data.rstrip(b"\n").rsplit(b"\n", 1)[-1]
