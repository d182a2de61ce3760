"""One run per output folder: a lock file holding the owner's process id.

``with folder_lock(out):`` creates ``out/.effowt.lock`` (``O_EXCL``, so only one
process can) and removes it when the block ends, also on errors and interrupts.
While the pid in an existing lock is a live process the folder is refused with
one line naming it; a lock left by a process that no longer runs (killed,
crashed, machine rebooted) is taken over with a warning.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

from effowt.errors import EffOWTError
from effowt.fileio import output_error

LOCK_FILE = ".effowt.lock"


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (signal 0 checks without sending)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def lock_owner(path: Path) -> int | None:
    """The pid written in lock file ``path``; None when it is unreadable or empty."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike) -> Iterator[Path]:
    """Hold ``folder`` for this process (see the module docstring); yields the lock path."""
    path = Path(folder) / LOCK_FILE
    _acquire(path)
    try:
        yield path
    finally:
        if lock_owner(path) == os.getpid():
            path.unlink(missing_ok=True)


def _acquire(path: Path) -> None:
    for _ in range(2):  # a second try after taking over a stale lock
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = lock_owner(path)
            if owner is not None and pid_alive(owner):
                raise EffOWTError(
                    f"{path.parent}: in use by another effowt run (pid {owner}); wait for it to "
                    f"end or choose another output folder (remove {path} if pid {owner} is not effowt)"
                ) from None
            warnings.warn(f"{path.parent}: taking over the stale lock of pid {owner}, which no "
                          "longer runs", UserWarning, stacklevel=4)
            path.unlink(missing_ok=True)
            continue
        except OSError as err:
            raise output_error(path, err) from None
        with os.fdopen(fd, "w") as f:
            f.write(f"{os.getpid()}\n")
        return
    raise EffOWTError(f"{path.parent}: another effowt run took the folder at the same time")
