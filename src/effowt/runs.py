"""Run folders, and the one public way to build a model: :func:`create_model`.

A run folder ``RUN`` holds what inference needs:

- ``config.yaml``: the resolved :class:`~effowt.config.EffOWTConfig` (written once
  when a training starts, or by :func:`save_run`);
- ``last.safetensors``: ``model.trainable_state_dict()`` only, with metadata
  ``step``, ``backbone`` (json: the backbone's identity, name + sha256 of its
  weight file) and ``effowt_version``. The frozen backbone is not stored: it is
  rebuilt from its own weight file, and the identity check refuses a different one.

A training run adds its resume state (``train_state.pt``, see
:mod:`effowt.training.resume`) and its logs (``metrics.jsonl``, ``efficiency.json``,
``loss.png``, see :mod:`effowt.training.trainer`); inference never reads them.
Training and tracking both stand on this module; it imports neither.

Config and weights are written atomically (temp file + rename), so a crash
leaves the previous checkpoint whole.

A backbone without a weight file (random initialisation, tiny test models) has
no sha256; its identity then carries ``frozen_sha256``, a hash of the frozen
parameters. :func:`load_run` rebuilds such a backbone under
``torch.manual_seed(cfg.train.seed)`` -- how the trainer builds its model -- and
warns, saying whether the rebuilt frozen weights match.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_save

from effowt import __version__
from effowt.config import EffOWTConfig, apply_values, load_config, save_config
from effowt.errors import WeightsError
from effowt.fileio import atomic_write_bytes
from effowt.models import EffOWT, build_model

CONFIG_FILE = "config.yaml"
WEIGHTS_FILE = "last.safetensors"
# Runs shipped in effowt/assets/, by name: what `--weights NAME`, `create_model(NAME)` and
# `Tracker.from_pretrained(NAME)` accept besides a run folder.
SHIPPED_RUNS = {
    "effowt-cutout": "real cut-out objects, side network on the LiT ImageNet MobileNetV2 VLM (the default)",
    "effowt-mini": "MiniOWT's coloured shapes, side network on the tiny VLM (tests, MiniOWT benchmarks)",
}
DEFAULT_RUN = "effowt-cutout"


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


def read_weights(path: str | Path,
                 device: str | torch.device = "cpu") -> tuple[dict[str, torch.Tensor], dict[str, str]]:
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
    the working directory). Absolute paths and ``None`` are left alone. Returns a copy."""
    weights = cfg.model.backbone.weights
    if weights and not Path(weights).is_absolute():
        candidate = Path(run_dir) / weights
        if candidate.exists():
            return apply_values(cfg, {"model.backbone.weights": str(candidate)})
    return cfg


def build_seeded_model(cfg: EffOWTConfig) -> EffOWT:
    """``build_model(cfg.model)`` under ``torch.manual_seed(cfg.train.seed)`` without
    disturbing the caller's RNG: the same seed gives the same randomly initialised
    (frozen) weights, which a checkpoint does not store."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.train.seed)
        return build_model(cfg.model)


def load_run(
    run_dir: str | os.PathLike, device: str | torch.device = "cpu", overrides: list[str] | tuple[str, ...] = (),
    config: EffOWTConfig | None = None,
) -> tuple[EffOWT, EffOWTConfig]:
    """Rebuild a trained model from a run folder: ``(model in eval mode, config)``.

    Reads ``config.yaml`` (with ``overrides`` applied), builds the model (backbone
    weights from the config's path, a relative one resolved against ``run_dir``
    first; see :func:`resolve_backbone_weights`), checks the backbone identity and
    loads ``last.safetensors`` strictly. The returned config carries the resolved path.
    ``config``: that ``config.yaml`` already read (and its overrides applied) by the
    caller, used instead of reading it again; not together with ``overrides``.
    """
    run_dir = Path(run_dir)
    config_path = run_dir / CONFIG_FILE
    if not config_path.is_file():
        raise WeightsError(f"{run_dir}: not a run folder ({CONFIG_FILE} not found)")
    if config is not None and overrides:
        raise ValueError("give config (already resolved) or overrides, not both")
    cfg = config if config is not None else load_config(str(config_path), overrides)
    cfg = resolve_backbone_weights(cfg, run_dir)
    model = build_seeded_model(cfg)
    load_weights(run_dir / WEIGHTS_FILE, model)
    return model.to(device).eval(), cfg


def default_run_dir() -> Path:
    """The shipped default checkpoint's run folder (``effowt/assets/<DEFAULT_RUN>``)."""
    return shipped_run_dir(DEFAULT_RUN)


def shipped_run_dir(name: str) -> Path:
    """The run folder of the shipped run ``name`` (a key of :data:`SHIPPED_RUNS`)."""
    path = Path(str(resources.files("effowt") / "assets" / name))
    if not (path / CONFIG_FILE).is_file():
        raise WeightsError(f"{path}: the default checkpoint is not installed with this copy of "
                           f"effowt; pass a run folder (--weights RUN) trained with `effowt train`")
    return path


def resolve_run_dir(run: str | os.PathLike | None) -> Path:
    """``None`` -> the shipped default run, a :data:`SHIPPED_RUNS` name -> its folder,
    anything else -> the path as given."""
    if run is None:
        return default_run_dir()
    if str(run) in SHIPPED_RUNS:
        return shipped_run_dir(str(run))
    return Path(run)


def is_run_dir(path: str | os.PathLike) -> bool:
    """True when ``path`` is a folder holding a run's ``config.yaml``."""
    return (Path(path) / CONFIG_FILE).is_file()


def run_config(name_or_run: str | os.PathLike | None = None) -> EffOWTConfig:
    """The config :func:`create_model` builds ``name_or_run`` from (same precedence): a
    run folder's ``config.yaml``, or a preset or YAML file."""
    source = resolve_run_dir(name_or_run)
    return load_config(str(source / CONFIG_FILE if is_run_dir(source) else source))


def create_model(
    name_or_run: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    overrides: list[str] | tuple[str, ...] = (),
    config: EffOWTConfig | None = None,
) -> tuple[EffOWT, EffOWTConfig]:
    """Build an EffOWT model from a run folder or a preset: ``(model in eval mode, config)``.

    Precedence: ``None`` is the shipped default run (:func:`default_run_dir`), a
    :data:`SHIPPED_RUNS` name a shipped run (``"effowt-mini"``); a
    folder holding ``config.yaml`` is a run folder, loaded with :func:`load_run`
    (trained weights, backbone identity checked); anything else is a preset name
    or YAML file (:func:`~effowt.config.load_config`), built with the frozen
    weights its ``model.backbone.weights`` names and freshly initialised trainable
    parts (:func:`build_seeded_model`). ``overrides`` (``section.key=value``) are
    applied to the config first; on a run folder only settings that leave the
    weights' shapes alone (``tracker.*``, thresholds) make sense. The config is
    returned because using the model needs it (``model.image_size``, ``tracker``).
    ``config``: the run's or preset's config already read and resolved by the caller
    (see :func:`load_run`), so that it is not read again. Never downloads.
    """
    source = resolve_run_dir(name_or_run)
    if is_run_dir(source):
        return load_run(source, device=device, overrides=overrides, config=config)
    if config is not None and overrides:
        raise ValueError("give config (already resolved) or overrides, not both")
    cfg = config if config is not None else load_config(str(source), overrides)
    return build_seeded_model(cfg).to(device).eval(), cfg
