"""How many torch CPU threads a command computes with: ``--threads N``, or a default
from the cores this process may use and the size of its model.

The default (:func:`default_threads`): one thread for a small model (fewer than
:data:`SMALL_MODEL_PARAMS` parameters, e.g. the shipped tiny VLM with its side
network), whose layers are too small for threads to pay and whose threads wait for
each other whenever another process is busy on the machine (measured on 2 cores:
``make demo`` 7 s on one thread, 71 s on two beside another busy process, the same
results); otherwise every core the process may use (``os.sched_getaffinity``: a
container's or ``taskset``'s limit, not the machine's count), shared among the
processes that compute side by side (``--workers``, torchrun ranks).
"""

from __future__ import annotations

import os

import torch

SMALL_MODEL_PARAMS = 20_000_000


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask; ``os.cpu_count()`` where
    the platform has no affinity)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_threads(num_params: int | None = None, processes: int = 1) -> int:
    """The default thread count (module docstring): 1 for a model of fewer than
    :data:`SMALL_MODEL_PARAMS` parameters, else the usable cores divided among
    ``processes`` (at least 1). ``num_params=None``: the model is not known (cores)."""
    if num_params is not None and num_params < SMALL_MODEL_PARAMS:
        return 1
    return max(1, usable_cores() // max(1, processes))


def set_threads(threads: int | None, model: torch.nn.Module | None = None, processes: int = 1) -> int:
    """Set torch's intra-op threads to ``threads``, or when None to
    :func:`default_threads` for ``model``'s parameter count; returns the count set."""
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    if threads is None:
        num_params = None if model is None else sum(p.numel() for p in model.parameters())
        threads = default_threads(num_params, processes)
    torch.set_num_threads(threads)
    return threads
