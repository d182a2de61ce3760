"""effowt: open-world multi-object tracking by efficient transfer of frozen VLMs (EffOWT).

``effowt.create_model(name_or_run)`` builds a model from a preset or a run folder
(see :func:`effowt.runs.create_model`); it is imported on first use, so that
``import effowt`` (and ``effowt --help``) stays light.
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "create_model"]


def __getattr__(name: str) -> Any:
    if name == "create_model":
        from effowt.runs import create_model

        return create_model
    raise AttributeError(f"module 'effowt' has no attribute {name!r}")
