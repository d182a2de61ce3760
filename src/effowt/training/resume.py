"""Resume state of a training run: what ``--resume`` needs beyond the run folder.

A training run folder (see :mod:`effowt.runs`) adds ``train_state.pt``:
optimizer, scheduler, GradScaler, RNG states, data position, step and the training
wall time so far (``train_s``, so that a resumed run reports its whole time) -- plain
tensors and containers, read back with ``torch.load(weights_only=True)``;
nothing else is ever unpickled. It is written atomically together with the
trainable weights (:func:`save_checkpoint`); both files record the step, and
resuming refuses a pair that disagrees.
"""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from effowt.errors import WeightsError
from effowt.fileio import atomic_write_bytes
from effowt.runs import WEIGHTS_FILE, save_weights

STATE_FILE = "train_state.pt"


def has_checkpoint(run_dir: str | Path) -> bool:
    """True when ``run_dir`` holds a resumable checkpoint (weights + train state)."""
    run_dir = Path(run_dir)
    return (run_dir / WEIGHTS_FILE).is_file() and (run_dir / STATE_FILE).is_file()


def rng_state() -> dict[str, Any]:
    """torch (CPU and CUDA), numpy and python RNG states as weights-only-loadable data."""
    np_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": np_state["bit_generator"],
            "state": {"key": np_state["key"].numpy().astype(np.uint32), "pos": np_state["pos"]},
            "has_gauss": np_state["has_gauss"],
            "gauss": np_state["gauss"],
        }
    )
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_train_state(path: str | Path, state: dict[str, Any]) -> None:
    """Write a training state (tensors and plain containers only) atomically."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_train_state(path: str | Path) -> dict[str, Any]:
    """Read a training state with ``torch.load(weights_only=True)`` on CPU."""
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise WeightsError(f"{path}: training state not found") from None
    except Exception as err:  # noqa: BLE001 - any unpickling failure means a bad file
        raise WeightsError(f"{path}: not a readable training state ({type(err).__name__}: {err})") from None


def assert_finite_weights(model: torch.nn.Module, step: int) -> None:
    """``WeightsError`` when a trainable weight of ``model`` is NaN or infinite."""
    for name, p in model.named_parameters():
        if p.requires_grad and not torch.isfinite(p).all():
            raise WeightsError(f"step {step}: trainable weight {name} is not finite; checkpoint not written")


def save_checkpoint(
    run_dir: str | Path,
    model: torch.nn.Module,
    step: int,
    train_state: dict[str, Any],
    identity: dict[str, Any] | None = None,
) -> None:
    """Write the training state and trainable weights of ``step`` into ``run_dir``
    (the trainer writes ``config.yaml`` once, at the start). Refuses
    (``WeightsError``, nothing written) when a trainable weight is NaN or infinite,
    so a diverged run never overwrites its last good checkpoint. ``identity`` is
    :func:`backbone_identity` (computed when not given)."""
    assert_finite_weights(model, step)
    run_dir = Path(run_dir)
    save_train_state(run_dir / STATE_FILE, {**train_state, "step": int(step)})
    save_weights(run_dir / WEIGHTS_FILE, model, step, identity)
