"""Errors that the CLI reports as one clear line (no traceback).

Library code raises these (or subclasses) for bad user input: a missing or
corrupt file, a malformed json, a checkpoint that does not fit its config. The
message names the file and the problem. :class:`Interrupted` is not one of them:
it is how SIGINT / SIGTERM stop a command (see :mod:`effowt.cli`).
"""


class EffOWTError(Exception):
    """Bad input or state that the user can fix; the message says what and where."""


class ConfigError(EffOWTError, ValueError):
    """A configuration file, preset name or override is invalid."""


class DataError(EffOWTError, ValueError):
    """A dataset, annotation file, image or video is missing or malformed."""


class WeightsError(EffOWTError, ValueError):
    """A weight file is missing, unreadable or does not fit the model."""


class OutputError(EffOWTError, OSError):
    """An output file or folder cannot be written: disk full, no permission, a file in the way."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped a command; the message says what was kept and how to
    continue. A ``KeyboardInterrupt``, so ``except Exception`` never swallows it;
    ``signum`` is the signal (the CLI exits with 128 + signum)."""

    def __init__(self, signum: int, message: str = "") -> None:
        super().__init__(message)
        self.signum = signum
