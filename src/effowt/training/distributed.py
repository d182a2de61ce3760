"""Process-group set-up for ``torchrun`` (DistributedDataParallel).

``torchrun --nproc_per_node=K -m effowt train ...`` sets ``RANK``, ``WORLD_SIZE``
and ``LOCAL_RANK`` (plus ``MASTER_ADDR``/``MASTER_PORT``) in every process, and every
such process joins a process group and trains under DistributedDataParallel --
also ``--nproc_per_node=1``, so one GPU runs the same code path as eight. A plain
``effowt train`` has none of them and runs as a world of one without a process
group. The backend is NCCL on CUDA and gloo on CPU. Rank 0 alone logs, shows
progress and writes checkpoints; :func:`barrier` keeps the others in step around
those writes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist

from effowt.errors import ConfigError


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits: its rank in a world of ``world_size`` processes,
    the device it trains on (``cuda:<local_rank>`` under torchrun on GPUs) and
    whether it is in a process group (``group``)."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    group: bool = False

    @property
    def enabled(self) -> bool:
        """True when a process group is running (under torchrun, or more than one process)."""
        return self.group

    @property
    def is_main(self) -> bool:
        """True on the process that logs and writes files (rank 0)."""
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name}={raw!r} is not an integer") from None


def env_world_size() -> int:
    """``WORLD_SIZE`` from the environment (1 when unset, as in a plain ``effowt train``)."""
    return _env_int("WORLD_SIZE", 1)


def env_rank() -> int:
    """``RANK`` from the environment (0 when unset): who prints notes for the whole run."""
    return _env_int("RANK", 0)


def launched() -> bool:
    """True when a launcher such as torchrun set the ``env://`` rendezvous
    variables (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``)."""
    return all(name in os.environ for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"))


def resolve_device(device: str | None) -> str:
    """``"cpu"`` or ``"cuda"`` (the kind of ``device``: ``cpu``, ``cuda`` or ``cuda:N``);
    ``None`` picks CUDA when available."""
    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    kind, _, index = device.partition(":")
    if kind not in ("cpu", "cuda") or (index and (kind == "cpu" or not index.isdigit())):
        raise ConfigError(f"device must be cpu, cuda or cuda:N, got {device!r}")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available")
    if index and int(index) >= torch.cuda.device_count():
        raise ConfigError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return kind


def _cuda_index(device: str | None, local_rank: int) -> int:
    """The CUDA device of this process: ``LOCAL_RANK`` under a launcher, else N of
    ``cuda:N`` (0 for ``cuda``)."""
    if launched() or device is None or ":" not in device:
        return local_rank
    return int(device.partition(":")[2])


def init_distributed(device: str | None = None) -> DistEnv:
    """Read ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` and start the process group when
    a launcher started this process or the world has more than one process (NCCL
    on CUDA, gloo on CPU)."""
    kind = resolve_device(device)
    world_size = env_world_size()
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    if kind == "cuda":
        index = _cuda_index(device, local_rank)
        torch.cuda.set_device(index)
        torch_device = torch.device("cuda", index)
    else:
        torch_device = torch.device("cpu")
    group = world_size > 1 or launched()
    if group and not dist.is_initialized():
        dist.init_process_group(
            backend="nccl" if kind == "cuda" else "gloo",
            rank=rank,
            world_size=world_size,
            device_id=torch_device if kind == "cuda" else None,
        )
    return DistEnv(rank=rank, world_size=world_size, local_rank=local_rank, device=torch_device, group=group)


def barrier(env: DistEnv) -> None:
    """Wait for every process (no-op in a world of one)."""
    if env.enabled:
        if env.device.type == "cuda":
            dist.barrier(device_ids=[env.device.index])
        else:
            dist.barrier()


def agree(flag: bool, env: DistEnv) -> bool:
    """Rank 0's ``flag`` on every process (``flag`` itself in a world of one): a decision
    taken from one clock that all ranks must follow, e.g. a checkpoint by time."""
    if not env.enabled:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=env.device)
    dist.broadcast(value, src=0)
    return bool(value.item())


def all_reduce_mean(tensor: torch.Tensor, env: DistEnv) -> torch.Tensor:
    """Mean of ``tensor`` over all processes (returned as a new tensor)."""
    out = tensor.detach().clone()
    if env.enabled:
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        out /= env.world_size
    return out


def cleanup(env: DistEnv) -> None:
    """Tear the process group down (no-op when none was started)."""
    if env.enabled and dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def distributed(device: str | None = None) -> Iterator[DistEnv]:
    """Context manager around :func:`init_distributed` / :func:`cleanup`, so the
    process group is torn down on success and on error alike."""
    env = init_distributed(device)
    try:
        yield env
    finally:
        cleanup(env)
