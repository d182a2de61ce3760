"""Loading a backbone's weights from a local file, strictly, with clear errors.

Accepted files: ``.safetensors`` (read with safetensors) and ``.pt``/``.pth``/``.bin``
(read with ``torch.load(weights_only=True)``: never unpickle arbitrary objects).
Accepted layouts: the bare state dict of the wrapped module, or a whole
open_clip / timm / training checkpoint: a ``state_dict``/``model``/``module``
nesting is unwrapped, a ``module.`` prefix (DataParallel) is dropped, and when
keys carry a prefix naming the vision tower (``visual.trunk.``, ``visual.``,
``trunk.``) only those keys are kept (the text tower of a CLIP checkpoint is
ignored). Every remaining key must match the module exactly. A path
``effowt:REL`` names a file shipped inside the package (the tiny VLM).
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable, Iterable
from importlib import resources
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from effowt.errors import WeightsError

TORCH_SUFFIXES = (".pt", ".pth", ".bin")
NESTING_KEYS = ("state_dict", "model", "module")
MAX_LISTED_KEYS = 5
PACKAGE_SCHEME = "effowt:"


def file_sha256(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks (weight files can be GBs)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_bytes), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_weights_path(path: str | Path) -> Path:
    """``effowt:REL`` names a file shipped inside the effowt package (the tiny VLM:
    ``effowt:assets/tiny-vlm.safetensors``); any other path is used as given."""
    text = str(path)
    if text.startswith(PACKAGE_SCHEME):
        return Path(str(resources.files("effowt") / text[len(PACKAGE_SCHEME) :]))
    return Path(path)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors or torch weight file, unwrapped from common nestings."""
    path = resolve_weights_path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: backbone weight file not found")
    suffix = path.suffix.lower()
    try:
        if suffix == ".safetensors":
            state = load_file(str(path), device="cpu")
        elif suffix in TORCH_SUFFIXES:
            state = torch.load(path, map_location="cpu", weights_only=True)
        else:
            raise WeightsError(
                f"{path}: unsupported weight file type {suffix!r} "
                f"(use .safetensors or {'/'.join(TORCH_SUFFIXES)})"
            )
    except WeightsError:
        raise
    except Exception as err:  # corrupt file, or pickled objects refused by weights_only
        raise WeightsError(f"{path}: cannot read weights: {err}") from None
    while isinstance(state, dict) and not _is_tensor_dict(state):
        inner = next((state[k] for k in NESTING_KEYS if isinstance(state.get(k), dict)), None)
        if inner is None:
            break
        state = inner
    if not isinstance(state, dict) or not _is_tensor_dict(state):
        raise WeightsError(f"{path}: no state dict of tensors found (top-level keys: {_listed(state)})")
    return state


def _is_tensor_dict(state: dict) -> bool:
    return bool(state) and all(isinstance(v, torch.Tensor) for v in state.values())


def _listed(state: object) -> str:
    if not isinstance(state, dict):
        return type(state).__name__
    keys = list(state)[:MAX_LISTED_KEYS]
    return ", ".join(map(str, keys)) + (" ..." if len(state) > MAX_LISTED_KEYS else "")


def strip_prefixes(state: dict[str, torch.Tensor], prefixes: Iterable[str]) -> dict[str, torch.Tensor]:
    """Drop a DataParallel ``module.`` prefix, then keep only the keys under the first
    of ``prefixes`` that any key carries (with the prefix removed)."""
    if all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    for prefix in prefixes:
        if any(k.startswith(prefix) for k in state):
            return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    return state


def load_weights_into(
    module: nn.Module,
    path: str | Path,
    prefixes: Iterable[str] = (),
    ignore: Callable[[str], bool] = lambda key: False,
    convert: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None,
) -> str:
    """Load ``path`` into ``module`` strictly and return the file's sha256.

    ``prefixes`` select the vision tower's keys (see :func:`strip_prefixes`);
    ``ignore(key)`` drops file keys the module deliberately lacks (a classifier or
    projection head); ``convert`` adapts a library's own checkpoint format (e.g. a
    timm ``checkpoint_filter_fn`` that resamples position embeddings).
    Raises WeightsError naming the file and the first offending keys with shapes.
    """
    path = resolve_weights_path(path)
    state = strip_prefixes(read_state_dict(path), prefixes)
    state = {k: v for k, v in state.items() if not ignore(k)}
    if convert is not None:
        state = convert(state)
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [k for k in state if k in own and tuple(state[k].shape) != tuple(own[k].shape)]
    problems = []
    if missing:
        problems.append("missing keys: " + _keys_with_shapes(missing, own))
    if unexpected:
        problems.append("unexpected keys: " + _keys_with_shapes(unexpected, state))
    if mismatched:
        shown = [
            f"{k} (file {tuple(state[k].shape)} vs model {tuple(own[k].shape)})"
            for k in mismatched[:MAX_LISTED_KEYS]
        ]
        more = f" ... (+{len(mismatched) - MAX_LISTED_KEYS} more)" if len(mismatched) > MAX_LISTED_KEYS else ""
        problems.append("shape mismatch: " + ", ".join(shown) + more)
    if problems:
        raise WeightsError(f"{path}: weights do not fit the backbone: " + "; ".join(problems))
    module.load_state_dict(state, strict=True)
    return file_sha256(path)


def _keys_with_shapes(keys: list[str], state: dict[str, torch.Tensor]) -> str:
    shown = [f"{k} {tuple(state[k].shape)}" for k in keys[:MAX_LISTED_KEYS]]
    more = f" ... (+{len(keys) - MAX_LISTED_KEYS} more)" if len(keys) > MAX_LISTED_KEYS else ""
    return ", ".join(shown) + more


def warn_random_init(name: str) -> None:
    """The loud warning for a backbone built without weights."""
    warnings.warn(
        f"random-initialised backbone {name}: no weights given, features are meaningless "
        "for transfer; pass --backbone-weights FILE (model.backbone.weights=FILE)",
        UserWarning,
        stacklevel=3,
    )
