"""Progress on a terminal, nothing elsewhere: the one switch every command's bars and
training lines read.

Progress (tqdm bars: frames of each tracked video with frames/s and boxes, training
steps; training lines every ``train.log_every`` steps) shows only when stderr is a
terminal and ``--quiet`` was not given. ``--quiet`` sets ``EFFOWT_QUIET=1``, so
worker processes (``--workers``, benchmark jobs) inherit it.
"""

from __future__ import annotations

import os
import sys

QUIET_ENV = "EFFOWT_QUIET"


def set_quiet(quiet: bool) -> None:
    """Turn progress off (``True``) for this process and the processes it starts."""
    if quiet:
        os.environ[QUIET_ENV] = "1"


def bar_disable() -> bool | None:
    """tqdm's ``disable`` argument: True under ``--quiet``, else None (tqdm shows the bar
    only when its stream, stderr, is a terminal)."""
    return True if os.environ.get(QUIET_ENV) == "1" else None


def show_progress() -> bool:
    """Whether progress lines are printed: stderr is a terminal and not ``--quiet``."""
    return bar_disable() is None and sys.stderr.isatty()
