"""Safe file output: atomic writes (temp file + rename) for checkpoints and results.

Every ``OSError`` of an output (disk full, no permission, a file where a folder
should be) becomes an :class:`~effowt.errors.OutputError` naming the path and the
problem, which the CLI prints as one line.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from effowt.errors import DataError, OutputError


def output_error(path: str | os.PathLike, err: OSError) -> OutputError:
    """The one-line :class:`OutputError` for an ``OSError`` raised while writing ``path``."""
    if isinstance(err, OutputError):
        return err
    return OutputError(f"{path}: cannot write: {err.strerror or err}")


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike) -> Iterator[IO[bytes]]:
    """A binary file to write ``path`` through: a temporary file beside it, fsynced and
    renamed over ``path`` when the block ends cleanly, removed on any error or
    interrupt (``path`` is then untouched). Lets large files be streamed. The file
    gets the permissions of a plain ``open(path, "w")`` (``0o666`` less the umask,
    applied by the OS at creation; the process umask is never read or changed)."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = str(path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the OS applies the umask
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        raise output_error(path, err) from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and rename, so a crash never
    leaves a half-written file behind."""
    with atomic_writer(path) as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Text variant of :func:`atomic_write_bytes` (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """JSON variant of :func:`atomic_write_bytes` (indented, UTF-8)."""
    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


def atomic_save_figure(fig: Any, path: str | os.PathLike, dpi: int = 100) -> None:
    """Save a matplotlib ``Figure`` as PNG via :func:`atomic_write_bytes`."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    atomic_write_bytes(path, buffer.getvalue())


def prepare_output_dir(path: str | os.PathLike) -> Path:
    """Create the output folder ``path`` (and its parents) and prove it writable with
    a probe file, before any work is done; OutputError naming it otherwise (also for an
    empty path, which would mean the current folder)."""
    if not str(path).strip():
        raise OutputError("the output folder is empty (it would mean the current folder); name a folder")
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path}: exists and is not a folder; choose another output folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"{path}: cannot create the output folder: {err.strerror or err}") from None
    try:
        fd, probe = tempfile.mkstemp(dir=path, prefix=".write-probe-")
        with os.fdopen(fd, "wb") as f:
            f.write(b"ok\n")
            f.flush()
            os.fsync(f.fileno())
        os.unlink(probe)
    except OSError as err:
        raise OutputError(f"{path}: output folder is not writable: {err.strerror or err}") from None
    return path


def writable_parent(path: str | os.PathLike) -> Path | None:
    """The nearest existing folder at or above ``path`` if it is writable, else None
    (a read-only look: whether ``path`` could be created and written)."""
    path = Path(path)
    for folder in (path, *path.parents):
        if folder.exists():
            return folder if folder.is_dir() and os.access(folder, os.W_OK) else None
    return None


def check_outside(out_dir: str | os.PathLike, folder: str | os.PathLike, what: str) -> None:
    """OutputError when the output folder ``out_dir`` is ``folder`` or inside it (an
    input folder that is read whole, e.g. a folder of frame folders: a second run
    would read the first one's outputs); ``what`` names the input in the message."""
    out, inside = Path(out_dir).resolve(), Path(folder).resolve()
    if out == inside or inside in out.parents:
        raise OutputError(f"--out {out_dir} is inside {what} {folder}: a later run would read its outputs "
                          "as input; choose an output folder outside it")


def read_json(path: str | os.PathLike, what: str) -> Any:
    """Parse a json file; DataError naming the file when it is missing (``<what> file
    not found``) or not valid json."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: {what} file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not a valid json file ({err})") from None
