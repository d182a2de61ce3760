"""Meters of a training run (its efficiency report): parameters, peak memory, speed.

Peak memory is ``torch.cuda.max_memory_allocated`` on a GPU (tensors only, reset
right before the first step, so weights, optimizer state and activations count)
and the process's peak resident set size (``resource.getrusage(...).ru_maxrss``:
the whole process, since it started) on CPU; ``memory_kind`` says which. Times
are wall-clock seconds per optimizer step; the first step of a session is
warm-up and is left out when there are others.
"""

from __future__ import annotations

import resource
import sys
import time
from typing import Any

import torch

from effowt.models.params import count_parameters


def parameter_counts(model: torch.nn.Module) -> dict[str, Any]:
    """``trainable`` / ``total`` parameter counts (as ``effowt bench efficiency``
    reports them) and ``trainable_fraction``."""
    counts = count_parameters(model)
    return {**counts, "trainable_fraction": counts["trainable"] / counts["total"] if counts["total"] else 0.0}


def reset_peak_memory(device: torch.device) -> None:
    """Start a fresh GPU peak-memory count (CPU RSS peaks cannot be reset)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device: torch.device) -> dict[str, Any]:
    """``{"peak_mem_bytes": int, "memory_kind": "cuda_max_memory_allocated" | "peak_rss"}``
    (the keys of ``effowt bench efficiency``)."""
    if device.type == "cuda":
        return {"peak_mem_bytes": int(torch.cuda.max_memory_allocated(device)),
                "memory_kind": "cuda_max_memory_allocated"}
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return {"peak_mem_bytes": int(rss * scale), "memory_kind": "peak_rss"}


class StepTimer:
    """Wall-clock time per optimizer step; the first step is warm-up and is
    dropped from the mean when more steps follow."""

    def __init__(self) -> None:
        self.durations: list[float] = []
        self.images = 0
        self._t0 = 0.0

    def start(self) -> None:
        """Mark the beginning of a step."""
        self._t0 = time.perf_counter()

    def stop(self, images: int) -> float:
        """Mark the end of a step that processed ``images`` images (all processes);
        returns its duration in seconds."""
        dt = time.perf_counter() - self._t0
        self.durations.append(dt)
        self.images = images
        return dt

    def summary(self) -> dict[str, float | None]:
        """``step_s`` (mean seconds per step) and ``images_per_s``; ``None`` before any step."""
        timed = self.durations[1:] if len(self.durations) > 1 else self.durations
        if not timed:
            return {"step_s": None, "images_per_s": None}
        step_s = sum(timed) / len(timed)
        return {"step_s": step_s, "images_per_s": self.images / step_s if step_s > 0 else None}


def format_report(report: dict[str, Any]) -> str:
    """One human-readable line of an efficiency report."""
    parts = [
        f"trainable {report['trainable']:,} / total {report['total']:,} params "
        f"({100 * report['trainable_fraction']:.2f}%)"
    ]
    if report.get("peak_mem_bytes") is not None:
        parts.append(f"peak memory {report['peak_mem_bytes'] / 2**20:.0f} MiB ({report['memory_kind']})")
    if report.get("step_s") is not None:
        parts.append(f"{report['step_s']:.3f} s/step, {report['images_per_s']:.1f} images/s")
    return f"efficiency [{report['phase']}]: " + ", ".join(parts)
