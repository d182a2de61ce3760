"""One run per output folder: a kernel lock on ``out/.effowt.lock`` (:mod:`filelock`).

``with folder_lock(out):`` takes an exclusive ``flock`` on ``out/.effowt.lock``
without waiting, writes this process's id into the file (for the message a second
run gets) and removes the file when the block ends, also on errors and interrupts.
While another process holds the lock the folder is refused with one line naming
that process. The kernel drops the lock when its process ends however it ends
(killed, crashed), so a file left behind never blocks a later run: its pid is only
reported, in a warning, as a stale lock taken over.

:func:`refuse_if_held` is the same check without taking the lock: the command line
runs it before it imports torch, so that a second run into a held folder is refused
at once (``effowt track`` still takes the lock itself once its model is loaded).
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from effowt.errors import EffOWTError
from effowt.fileio import output_error

LOCK_FILE = ".effowt.lock"


def lock_owner(path: Path) -> int | None:
    """The pid written in lock file ``path``; None when it is unreadable or empty."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _in_use(path: Path) -> EffOWTError:
    owner = lock_owner(path)
    pid = "pid unknown" if owner is None else f"pid {owner}"
    return EffOWTError(f"{path.parent}: in use by another effowt run ({pid}); wait for it to "
                       "end or choose another output folder")


def _try_lock(path: Path) -> FileLock:
    """The acquired lock on ``path``; EffOWTError when another process holds it."""
    lock = FileLock(path, timeout=0, fallback_to_soft=False)
    try:
        lock.acquire()
    except Timeout:
        raise _in_use(path) from None
    except OSError as err:
        raise output_error(path, err) from None
    return lock


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike) -> Iterator[Path]:
    """Hold ``folder`` for this process (see the module docstring); yields the lock path."""
    path = Path(folder) / LOCK_FILE
    lock = _try_lock(path)
    try:
        previous = lock_owner(path)
        if previous is not None and previous != os.getpid():
            warnings.warn(f"{path.parent}: taking over the stale lock of pid {previous}, which no "
                          "longer runs", UserWarning, stacklevel=3)
        try:
            path.write_text(f"{os.getpid()}\n")
        except OSError as err:
            raise output_error(path, err) from None
    except BaseException:
        lock.release()
        raise
    try:
        yield path
    finally:
        with contextlib.suppress(OSError):
            path.unlink()  # while still held: a run waiting on this file then sees it gone
        lock.release()


def refuse_if_held(folder: str | os.PathLike) -> None:
    """EffOWTError (the one line of :func:`folder_lock`) when another process holds
    ``folder``; nothing is written, and a free folder is left as it was."""
    path = Path(folder) / LOCK_FILE
    if path.is_file():
        _try_lock(path).release()
