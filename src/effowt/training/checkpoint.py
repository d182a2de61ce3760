"""Run folders: checkpoints written by training, read by tracking and benchmarks.

A run folder ``RUN`` holds

- ``config.yaml``: the resolved :class:`~effowt.config.EffOWTConfig` (written once
  when a training starts, or by :func:`save_run`);
- ``last.safetensors``: ``model.trainable_state_dict()`` only, with metadata
  ``step``, ``backbone`` (json: the backbone's identity, name + sha256 of its
  weight file) and ``effowt_version``. The frozen backbone is not stored: it is
  rebuilt from its own weight file, and the identity check refuses a different one;
- ``train_state.pt`` (training runs only): optimizer, scheduler, GradScaler, RNG
  states, data position and step -- plain tensors and containers, read back
  with ``torch.load(weights_only=True)``; nothing else is ever unpickled;
- ``metrics.jsonl`` (appended line by line), ``efficiency.json``, ``loss.png``
  (written by the trainer).

Config, weights and training state are written atomically (temp file + rename),
so a crash leaves the previous checkpoint whole; the two checkpoint files both
record the step, and resuming refuses a pair that disagrees.

A backbone without a weight file (random initialisation, tiny test models) has
no sha256; its identity then carries ``frozen_sha256``, a hash of the frozen
parameters. :func:`load_run` rebuilds such a backbone under
``torch.manual_seed(cfg.train.seed)`` -- how the trainer builds its model -- and
warns, saying whether the rebuilt frozen weights match.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_save

from effowt import __version__
from effowt.config import EffOWTConfig, load_config, save_config
from effowt.errors import WeightsError
from effowt.fileio import atomic_write_bytes
from effowt.models import build_model

CONFIG_FILE = "config.yaml"
WEIGHTS_FILE = "last.safetensors"
STATE_FILE = "train_state.pt"
METRICS_FILE = "metrics.jsonl"
EFFICIENCY_FILE = "efficiency.json"
LOSS_PLOT_FILE = "loss.png"


def frozen_fingerprint(model: torch.nn.Module) -> str:
    """sha256 over the names, shapes, dtypes and values of the parameters that do
    not require gradients (the frozen part a checkpoint does not store)."""
    digest = hashlib.sha256()
    for name, p in model.named_parameters():
        if p.requires_grad:
            continue
        t = p.detach().to("cpu").contiguous()
        digest.update(f"{name}|{tuple(t.shape)}|{t.dtype}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def backbone_identity(model: torch.nn.Module) -> dict[str, Any]:
    """``model.backbone_identity()``, plus ``frozen_sha256`` when the backbone has
    no weight file."""
    identity = dict(model.backbone_identity())
    if identity.get("weights_sha256") is None:
        identity["frozen_sha256"] = frozen_fingerprint(model)
    return identity


def save_weights(path: str | Path, model: torch.nn.Module, step: int, identity: dict[str, Any] | None = None) -> None:
    """Write ``model.trainable_state_dict()`` to ``path`` (safetensors, atomic)
    with metadata ``step``, ``backbone`` (json) and ``effowt_version``.
    ``identity`` is :func:`backbone_identity` (computed when not given)."""
    tensors = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.trainable_state_dict().items()}
    metadata = {
        "format": "effowt-trainable",
        "step": str(int(step)),
        "backbone": json.dumps(identity if identity is not None else backbone_identity(model), sort_keys=True),
        "effowt_version": __version__,
    }
    atomic_write_bytes(path, safetensors_save(tensors, metadata=metadata))


def read_weights(path: str | Path, device: str | torch.device = "cpu") -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors file; ``WeightsError`` naming the file
    when it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weight file not found")
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            metadata = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise WeightsError(f"{path}: not a readable safetensors file ({err})") from None
    return tensors, metadata


def check_backbone_identity(saved: dict[str, Any], model: torch.nn.Module, path: str | Path) -> None:
    """Refuse a backbone that is not the one the weights were trained on.

    A different name or weight-file sha256 is a ``WeightsError``. When the run had
    no backbone weight file the identity cannot be proven: a ``UserWarning`` says
    so, and whether the frozen parameters match the saved ``frozen_sha256``.
    """
    current = dict(model.backbone_identity())
    if saved.get("name") != current.get("name"):
        raise WeightsError(
            f"{path}: trained with backbone {saved.get('name')!r}, but the model has {current.get('name')!r}"
        )
    if saved.get("weights_sha256") is None:
        match = saved.get("frozen_sha256") == frozen_fingerprint(model)
        warnings.warn(
            f"{path}: the run's backbone had no weight file (random initialisation); "
            + (
                "the rebuilt frozen weights match the saved fingerprint"
                if match
                else "the rebuilt frozen weights DIFFER from the trained ones, outputs will not be reproduced"
            ),
            UserWarning,
            stacklevel=3,
        )
        return
    if saved["weights_sha256"] != current.get("weights_sha256"):
        raise WeightsError(
            f"{path}: trained with backbone weights sha256 {saved['weights_sha256']}, "
            f"but the model's backbone weights have sha256 {current.get('weights_sha256')}"
        )


def load_weights(path: str | Path, model: torch.nn.Module) -> dict[str, Any]:
    """Load a trainable checkpoint into ``model`` strictly, after the backbone
    identity check; returns the metadata (``step`` as int, ``backbone`` as dict).

    Missing / unexpected keys and shape mismatches raise ``WeightsError`` naming
    the file and the keys.
    """
    device = next(iter(model.parameters())).device
    tensors, metadata = read_weights(path, device)
    try:
        identity = json.loads(metadata["backbone"])
        step = int(metadata["step"])
    except (KeyError, ValueError) as err:
        raise WeightsError(f"{path}: not an effowt checkpoint (metadata lacks step/backbone: {err})") from None
    check_backbone_identity(identity, model, path)
    try:
        model.load_trainable_state_dict(tensors)
    except WeightsError as err:
        raise WeightsError(f"{path}: {err}") from None
    return {**metadata, "step": step, "backbone": identity}


def snapshot_file(step: int) -> str:
    """File name of the weights snapshot of ``step`` (``train.snapshot_every``)."""
    return f"step{step:06d}.safetensors"


def save_run(run_dir: str | Path, model: torch.nn.Module, cfg: EffOWTConfig, step: int = 0) -> Path:
    """Write ``config.yaml`` and ``last.safetensors`` of ``model`` into ``run_dir``
    (created if needed), loadable with :func:`load_run`. Returns ``run_dir``."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir / CONFIG_FILE)
    save_weights(run_dir / WEIGHTS_FILE, model, step)
    return run_dir


def resolve_backbone_weights(cfg: EffOWTConfig, run_dir: str | Path) -> EffOWTConfig:
    """Resolve a relative ``model.backbone.weights`` path: against ``run_dir`` first
    (weights kept inside or beside a copied run folder), then as given (relative to
    the working directory). Absolute paths and ``None`` are left alone."""
    weights = cfg.model.backbone.weights
    if weights and not Path(weights).is_absolute():
        candidate = Path(run_dir) / weights
        if candidate.exists():
            cfg.model.backbone.weights = str(candidate)
    return cfg


def build_seeded_model(cfg: EffOWTConfig) -> torch.nn.Module:
    """``build_model(cfg.model)`` under ``torch.manual_seed(cfg.train.seed)`` without
    disturbing the caller's RNG: the same seed gives the same randomly initialised
    (frozen) weights, which a checkpoint does not store."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.train.seed)
        return build_model(cfg.model)


def load_run(run_dir: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, EffOWTConfig]:
    """Rebuild a trained model from a run folder: ``(model in eval mode, config)``.

    Reads ``config.yaml``, builds the model (backbone weights from the config's
    path, a relative one resolved against ``run_dir`` first; see
    :func:`resolve_backbone_weights`), checks the backbone identity and loads
    ``last.safetensors`` strictly. The returned config carries the resolved path.
    """
    run_dir = Path(run_dir)
    config_path = run_dir / CONFIG_FILE
    if not config_path.is_file():
        raise WeightsError(f"{run_dir}: not a run folder ({CONFIG_FILE} not found)")
    cfg = resolve_backbone_weights(load_config(str(config_path)), run_dir)
    model = build_seeded_model(cfg)
    load_weights(run_dir / WEIGHTS_FILE, model)
    return model.to(device).eval(), cfg


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
