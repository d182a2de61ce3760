"""Errors that the CLI reports as one clear line (no traceback).

Library code raises these (or subclasses) for bad user input: a missing or
corrupt file, a malformed json, a checkpoint that does not fit its config. The
message names the file and the problem.
"""


class EffOWTError(Exception):
    """Bad input or state that the user can fix; the message says what and where."""


class ConfigError(EffOWTError, ValueError):
    """A configuration file, preset name or override is invalid."""


class DataError(EffOWTError, ValueError):
    """A dataset, annotation file, image or video is missing or malformed."""


class WeightsError(EffOWTError, ValueError):
    """A weight file is missing, unreadable or does not fit the model."""
