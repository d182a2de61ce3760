"""The runtime every layer stands on: launcher, rank, world size, process group, device.

Training, tracking and the benchmarks all read these from here (as detectron2's
``utils/comm.py``); nothing below imports them from one another.

**Launcher.** ``torchrun --nproc_per_node=K -m effowt <command> ...`` sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` (plus ``MASTER_ADDR``/``MASTER_PORT``) in every
process: :func:`launched` is then true. A plain ``effowt <command>`` has none of them
and is rank 0 of a world of one.

**Device.** :func:`resolve_device` is the one rule for ``--device`` and ``device=``
arguments: ``None`` picks CUDA when available, else CPU; otherwise ``cpu``, ``cuda``,
``cuda:N`` or ``mps``, checked to exist on this machine (``ConfigError`` saying what is
wrong). :func:`local_device` is the device of this process: under a launcher a CUDA
device becomes ``cuda:<LOCAL_RANK>`` (one GPU per process).

**Process group.** :func:`process_group` joins the launcher's ``env://`` group for a
block and tears it down at the end, also on errors. Training joins it in a world of
one too (so one GPU runs the same DistributedDataParallel path as eight, NCCL on CUDA,
gloo on CPU); tracking only when there is more than one process (gloo: only Python
objects travel, through :func:`broadcast_object` and :func:`gather_objects`).

torch is imported inside the functions, so that the command line can read the rank
(to decide who prints) before it imports torch (see :mod:`effowt.cli`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from effowt.errors import ConfigError

if TYPE_CHECKING:
    import torch

RENDEZVOUS_VARIABLES = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name}={raw!r} is not an integer") from None


def launched() -> bool:
    """True when a launcher such as torchrun set the ``env://`` rendezvous
    variables (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``)."""
    return all(name in os.environ for name in RENDEZVOUS_VARIABLES)


def env_rank() -> int:
    """``RANK`` from the environment (0 when unset): who prints notes for the whole run."""
    return _env_int("RANK", 0)


def env_world_size() -> int:
    """``WORLD_SIZE`` from the environment (1 when unset, as in a plain ``effowt`` command)."""
    return _env_int("WORLD_SIZE", 1)


def env_local_rank() -> int:
    """``LOCAL_RANK`` from the environment (0 when unset): this process's GPU on its node."""
    return _env_int("LOCAL_RANK", 0)


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """The torch device ``device`` names, checked to exist on this machine.

    ``None`` picks ``cuda`` when CUDA is available, else ``cpu``. Otherwise ``cpu``,
    ``cuda``, ``cuda:N`` or ``mps``; anything else, or a device this machine lacks, is a
    ConfigError saying what is wrong.
    """
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"device {str(device)!r} is not a torch device (use cpu, cuda or cuda:N)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {str(device)!r}: CUDA is not available on this machine; "
                              "use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device {str(device)!r}: this machine has "
                              f"{torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError(f"device {str(device)!r}: MPS is not available on this machine; "
                              "use --device cpu")
    elif dev.type != "cpu":
        raise ConfigError(f"device {str(device)!r} is not supported (use cpu, cuda or cuda:N)")
    return dev


def local_device(device: str | torch.device | None = None) -> torch.device:
    """This process's device: :func:`resolve_device`, where a CUDA device becomes
    ``cuda:<LOCAL_RANK>`` under a launcher and ``cuda:0`` (``LOCAL_RANK`` unset) when it
    names no index."""
    import torch

    dev = resolve_device(device)
    if dev.type == "cuda" and (launched() or dev.index is None):
        return torch.device("cuda", env_local_rank())
    return dev


@contextmanager
def process_group(backend: str = "gloo", device: torch.device | None = None, *,
                  world_of_one: bool = False) -> Iterator[tuple[int, int]]:
    """``(rank, world_size)`` for the block: the launcher's ``env://`` process group
    (``backend``; ``device`` is the NCCL device of this process) when :func:`launched`
    and the world has more than one process, or one process and ``world_of_one``;
    ``(0, 1)`` without a group otherwise. The group is torn down when the block ends;
    one already running (started by the caller) is used and left running. ``WORLD_SIZE``
    above 1 without the other rendezvous variables is a ConfigError."""
    if env_world_size() > 1 and not launched():
        raise ConfigError(f"WORLD_SIZE={env_world_size()} but not all of {', '.join(RENDEZVOUS_VARIABLES)} "
                          "are set; start the processes with torchrun")
    if not launched() or (env_world_size() == 1 and not world_of_one):
        yield 0, 1
        return
    import torch.distributed as dist

    started = not dist.is_initialized()
    if started:
        dist.init_process_group(backend=backend, rank=env_rank(), world_size=env_world_size(),
                                device_id=device if backend == "nccl" else None)
    try:
        yield dist.get_rank(), dist.get_world_size()
    finally:
        if started and dist.is_initialized():
            dist.destroy_process_group()


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (a picklable Python object)."""
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(obj: Any, rank: int, world: int) -> list[Any]:
    """Every rank's ``obj`` on rank 0 (by rank); the others get an empty list."""
    import torch.distributed as dist

    gathered: list[Any] = [None] * world if rank == 0 else []
    dist.gather_object(obj, gathered if rank == 0 else None, dst=0)
    return gathered


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits: its rank in a world of ``world_size`` processes,
    the device it runs on (``cuda:<local_rank>`` under torchrun on GPUs) and
    whether it is in a process group (``group``)."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    group: bool = False

    @property
    def enabled(self) -> bool:
        """True when a process group is running (under torchrun)."""
        return self.group

    @property
    def is_main(self) -> bool:
        """True on the process that logs and writes files (rank 0)."""
        return self.rank == 0


@contextmanager
def distributed(device: str | torch.device | None = None) -> Iterator[DistEnv]:
    """Training's runtime: the device of this process (:func:`local_device`) and, under
    a launcher, the process group of every size (NCCL on CUDA, gloo otherwise), torn
    down on success and on error alike."""
    import torch

    dev = local_device(device)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    with process_group(backend, dev, world_of_one=True) as (rank, world):
        yield DistEnv(rank=rank, world_size=world, local_rank=env_local_rank(), device=dev, group=launched())


def barrier(env: DistEnv) -> None:
    """Wait for every process (no-op in a world of one)."""
    import torch.distributed as dist

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
    import torch
    import torch.distributed as dist

    value = torch.tensor([1.0 if flag else 0.0], device=env.device)
    dist.broadcast(value, src=0)
    return bool(value.item())


def all_reduce_mean(tensor: torch.Tensor, env: DistEnv) -> torch.Tensor:
    """Mean of ``tensor`` over all processes (returned as a new tensor)."""
    import torch.distributed as dist

    out = tensor.detach().clone()
    if env.enabled:
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        out /= env.world_size
    return out
