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

Weights by name (:func:`hub_weights`), resolved through ``huggingface_hub``:

- ``hf-hub:ORG/NAME[:FILE]``: FILE of the Hub repository ORG/NAME; without FILE the
  first of :data:`HUB_DEFAULT_FILES` the repository has (timm's and open_clip's names);
- for an ``open_clip:MODEL`` backbone, an open_clip pretrained tag of MODEL
  (``laion2b_s34b_b88k``): the Hub copy open_clip names for it.

They use the Hub's cache (``HF_HUB_CACHE``, else ``HF_HOME``/hub, else
``~/.cache/huggingface/hub``), ``HF_ENDPOINT`` (a mirror) and ``HF_HUB_OFFLINE=1`` (cache
only), read when the weights are resolved. A file already cached is used without a
request when offline; with no network and no cached copy the WeightsError is one line
saying what to download and where to put it. The resolved file is then read like a
local one (same strictness, same sha256 record).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
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
HUB_SCHEME = "hf-hub:"
HUB_DEFAULT_FILES = ("model.safetensors", "open_clip_model.safetensors", "pytorch_model.bin",
                     "open_clip_pytorch_model.bin")
OPEN_CLIP_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
_REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*")
_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def file_sha256(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks (weight files can be GBs)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_bytes), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_weights_path(path: str | Path, backbone: str | None = None) -> Path:
    """The local file that ``path`` names: ``effowt:REL`` is a file shipped inside the
    effowt package (the tiny VLM: ``effowt:assets/tiny-vlm.safetensors``); a Hub name
    (``hf-hub:``, or an open_clip tag when ``backbone`` is ``open_clip:MODEL``: see
    :func:`hub_weights`) is fetched into or found in the Hub cache; any other path is
    used as given."""
    text = str(path)
    if text.startswith(PACKAGE_SCHEME):
        return Path(str(resources.files("effowt") / text[len(PACKAGE_SCHEME) :]))
    ref = hub_weights(text, backbone)
    if ref is not None:
        return ref.fetch()
    return Path(path)


@dataclass(frozen=True)
class HubWeights:
    """A weight file on the Hugging Face Hub: ``repo_id`` and the ``files`` to try in
    order (the first the repository has wins); ``spec``: the name as written."""

    spec: str
    repo_id: str
    files: tuple[str, ...]

    def cached(self) -> Path | None:
        """The cached copy (no request), or None."""
        from huggingface_hub import try_to_load_from_cache

        for filename in self.files:
            found = try_to_load_from_cache(self.repo_id, filename, cache_dir=hub_cache_dir())
            if isinstance(found, str):
                return Path(found)
        return None

    def fetch(self) -> Path:
        """The file in the Hub cache, downloaded first when missing (unless offline).

        Raises WeightsError in one line: the repository or file does not exist, or it is
        not cached and the Hub cannot be reached (what to download and where to put it).
        """
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import (
            EntryNotFoundError,
            HfHubHTTPError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )

        if hub_offline():
            cached = self.cached()
            if cached is None:
                raise WeightsError(self.download_hint())
            return cached
        for filename in self.files:
            try:
                return Path(hf_hub_download(self.repo_id, filename, cache_dir=hub_cache_dir(),
                                            endpoint=hub_endpoint()))
            except LocalEntryNotFoundError:
                # the Hub cannot be reached (after huggingface_hub's own retries) and this
                # name is not cached; another of the names may be
                cached = self.cached()
                if cached is None:
                    raise WeightsError(self.download_hint()) from None
                return cached
            except EntryNotFoundError:  # the repository has no such file: try the next name
                continue
            except (RepositoryNotFoundError, RevisionNotFoundError) as err:
                raise WeightsError(f"{self.spec}: no repository {self.repo_id} on {hub_endpoint() or 'the Hub'} "
                                   f"(or it is private or gated: log in with `hf auth login`): "
                                   f"{_first_line(err)}") from None
            except (HfHubHTTPError, OSError) as err:
                raise WeightsError(f"{self.spec}: cannot fetch {filename} from {self.repo_id}: "
                                   f"{_first_line(err)}") from None
        raise WeightsError(f"{self.spec}: repository {self.repo_id} has none of {', '.join(self.files)}; "
                           f"name the file: {HUB_SCHEME}{self.repo_id}:FILE")

    def download_hint(self) -> str:
        """One line: why the file is not here, what to download and where to put it."""
        why = "HF_HUB_OFFLINE is set" if hub_offline() else f"{hub_endpoint() or 'the Hub'} cannot be reached"
        filename = self.files[0]
        url = f"{hub_endpoint() or 'https://huggingface.co'}/{self.repo_id}/resolve/main/{filename}"
        return (f"{self.spec}: weights not in the Hugging Face cache {hub_cache_dir()} and {why}; on a machine "
                f"with a network run `hf download {self.repo_id} {filename} --cache-dir {hub_cache_dir()}` "
                f"(copy that folder here, or set HF_HUB_CACHE to it), or download {url} and pass "
                "--backbone-weights FILE (model.backbone.weights=null: random weights)")


def hub_weights(spec: str, backbone: str | None = None) -> HubWeights | None:
    """The Hub file ``spec`` names, or None when it is a local path.

    ``hf-hub:ORG/NAME[:FILE]`` names FILE (default: the first of
    :data:`HUB_DEFAULT_FILES` the repository has). When ``backbone`` is
    ``open_clip:MODEL``, a bare name that is not an existing file and has no weight
    suffix is an open_clip pretrained tag of MODEL (WeightsError listing MODEL's tags
    when it is not one, or when open_clip keeps no Hub copy of it).
    """
    if spec.startswith(HUB_SCHEME):
        repo_id, _, filename = spec[len(HUB_SCHEME):].partition(":")
        if not _REPO_ID.fullmatch(repo_id) or (filename and filename.endswith("/")):
            raise WeightsError(f"{spec}: expected {HUB_SCHEME}ORG/NAME or {HUB_SCHEME}ORG/NAME:FILE")
        return HubWeights(spec, repo_id, (filename,) if filename else HUB_DEFAULT_FILES)
    library, _, model = (backbone or "").partition(":")
    if library != "open_clip" or not _TAG.fullmatch(spec) or Path(spec).suffix.lower() in (
            ".safetensors", *TORCH_SUFFIXES) or Path(spec).exists():
        return None
    import open_clip

    tags = open_clip.list_pretrained_tags_by_model(model)
    if spec.lower() not in tags:
        raise WeightsError(f"{spec}: neither a weight file nor an open_clip pretrained tag of {model} "
                           f"(tags: {', '.join(tags) or 'none'})")
    hub = open_clip.get_pretrained_cfg(model, spec).get("hf_hub", "")
    if not hub:
        raise WeightsError(f"{spec}: open_clip keeps no Hugging Face Hub copy of {model} {spec}; "
                           "download its weights and pass --backbone-weights FILE")
    parts = hub.strip("/").split("/")  # ORG/NAME/ or ORG/NAME/FILE
    filename = "/".join(parts[2:])
    return HubWeights(spec, "/".join(parts[:2]), (filename,) if filename else OPEN_CLIP_FILES)


def weights_problem(spec: str, backbone: str | None = None) -> str | None:
    """Why ``spec`` could not be loaded, found out without reading or downloading it (one
    line naming it), or None: a local file that is missing, a bad Hub name, Hub weights
    neither cached nor fetchable (offline). Hub weights not cached yet while online are
    fine: they are downloaded when the backbone is built."""
    try:
        ref = hub_weights(spec, backbone)
    except WeightsError as err:
        return str(err)
    if ref is None:
        return None if resolve_weights_path(spec).is_file() else f"{spec}: weight file not found"
    return ref.download_hint() if hub_offline() and ref.cached() is None else None


def hub_cache_dir() -> str:
    """The Hub cache folder: ``HF_HUB_CACHE``, else ``HF_HOME``/hub, else huggingface_hub's default."""
    from huggingface_hub import constants

    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return str(Path(os.environ["HF_HOME"]) / "hub")
    return constants.HF_HUB_CACHE


def hub_endpoint() -> str | None:
    """``HF_ENDPOINT`` (a Hub mirror) without its trailing slash, or None (the Hub)."""
    return os.environ.get("HF_ENDPOINT", "").rstrip("/") or None


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` asks for the cache only (set now, or when huggingface_hub
    was imported: the library then refuses every request)."""
    from huggingface_hub import constants

    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE") or \
        constants.is_offline_mode()


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


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
    backbone: str | None = None,
) -> str:
    """Load ``path`` into ``module`` strictly and return the file's sha256.

    ``path`` may name weights on the Hub (see :func:`resolve_weights_path`; ``backbone``,
    the backbone's ``library:model`` name, lets an open_clip tag name them).

    ``prefixes`` select the vision tower's keys (see :func:`strip_prefixes`);
    ``ignore(key)`` drops file keys the module deliberately lacks (a classifier or
    projection head); ``convert`` adapts a library's own checkpoint format (e.g. a
    timm ``checkpoint_filter_fn`` that resamples position embeddings).
    Raises WeightsError naming the file and the first offending keys with shapes.
    """
    path = resolve_weights_path(path, backbone)
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


RANDOM_INIT_WARNING = "random-initialised backbone"


def warn_random_init(name: str) -> None:
    """The loud warning for a backbone built without weights."""
    warnings.warn(
        f"{RANDOM_INIT_WARNING} {name}: no weights given, features are meaningless "
        "for transfer; pass --backbone-weights FILE or hf-hub:ORG/NAME (model.backbone.weights=...)",
        UserWarning,
        stacklevel=3,
    )


@contextlib.contextmanager
def random_init_expected() -> Iterator[None]:
    """Build backbones without weights on purpose (parameter counts, a probe's random
    reference) without :func:`warn_random_init`'s warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=RANDOM_INIT_WARNING)
        yield
