"""``ModuleTimer``: exclusive wall time of ``nn.Module`` calls, read by forward hooks.

The one profiler of the library: the tracker's stage timings (``Tracker(time_stages=True)``),
the training-step phases of ``bench step`` and the part profile of ``bench speed --profile``
all time a forward as it runs, without composing it again. A part's *exclusive* time is
its own time minus that of the timed parts it calls, so nested parts add up without
counting anything twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # hooks need no torch import: `effowt bench speed --help` stays torch-free
    from torch import nn


class ModuleTimer:
    """Exclusive seconds per name of the given modules' calls, accumulated while attached
    (a context manager; hooks come off on exit).

    Args:
        parts: ``(name, module)`` pairs; several modules may share a name (their times add).
        sync: run before every clock read (``torch.cuda.synchronize`` on CUDA, so that a
            part's time is its kernels' and not just their launch).

    Attributes:
        seconds: name -> exclusive seconds since construction or :meth:`reset`.
        called: the names whose modules ran at least once.
    """

    def __init__(self, parts: Iterable[tuple[str, nn.Module]], sync: Callable[[], None] = lambda: None) -> None:
        self.timed = list(parts)
        self.seconds: dict[str, float] = {name: 0.0 for name, _ in self.timed}
        self.called: set[str] = set()
        self._sync = sync
        self._stack: list[list[float]] = []
        self._handles: list[Any] = []

    def __enter__(self) -> ModuleTimer:
        for name, module in self.timed:
            self._handles.append(module.register_forward_pre_hook(self._pre))
            self._handles.append(module.register_forward_hook(self._post(name)))
        return self

    def __exit__(self, *exc: Any) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._stack = []

    def reset(self) -> None:
        """Zero :attr:`seconds`."""
        self.seconds = dict.fromkeys(self.seconds, 0.0)

    def _pre(self, module: nn.Module, args: Any) -> None:
        self._sync()
        self._stack.append([time.perf_counter(), 0.0])  # start, time spent in timed children

    def _post(self, name: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            self._sync()
            start, children = self._stack.pop()
            elapsed = time.perf_counter() - start
            self.seconds[name] += elapsed - children
            self.called.add(name)
            if self._stack:
                self._stack[-1][1] += elapsed

        return hook
