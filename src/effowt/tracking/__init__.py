"""Tracking: online association, the frame-by-frame Tracker, writers and rendering.

The names below are imported on first use, so that the command line can import the
torch-free parts (:mod:`effowt.tracking.vocabulary`) before it imports torch.
"""

from typing import Any

_EXPORTS = {"OnlineAssociator": "association", "Track": "association", "TrackState": "association",
            "associate": "association", "Detector": "tracker", "Tracker": "tracker"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f"effowt.tracking.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'effowt.tracking' has no attribute {name!r}")
