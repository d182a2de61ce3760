"""The interface every frozen vision-language backbone adapter implements.

A :class:`FrozenBackbone` wraps one library model (timm, open_clip) and gives the
rest of effowt the same small view of it: the token maps of the tapped blocks as
``[B, D, H/p, W/p]`` float32 tensors, the normalisation it expects, the weights
of any block in a standard layout (for pruning initialisation of the side
network) and the default LoRA targets of its family.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from effowt.errors import ConfigError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
BLOCK_WEIGHT_KEYS = ("q", "k", "v", "proj", "fc1", "fc2", "norm1", "norm2")


def parse_dtype(name: str) -> torch.dtype:
    """``"float32" | "bfloat16" | "float16"`` -> torch dtype (ConfigError otherwise)."""
    if name not in DTYPES:
        raise ConfigError(f"model.backbone.dtype: unknown dtype {name!r} (valid: {', '.join(DTYPES)})")
    return DTYPES[name]


class FrozenBackbone(nn.Module):
    """A ViT-style vision tower that returns the maps of its tapped blocks.

    Subclasses set ``model`` (the library module: weights are loaded into it and
    LoRA is injected into it) and implement :meth:`_forward_taps` and
    :meth:`block_weights`.

    Attributes:
        name: the config name, ``"<library>:<model>"``.
        embed_dim: token width D.
        patch_size: patch stride p in pixels.
        depth: number of transformer blocks of the original model.
        taps: indices of the blocks whose outputs :meth:`forward` returns, ascending.
        mean, std: RGB normalisation the weights were trained with.
        lora_targets: default peft ``target_modules`` for this family.
        frozen: when True (``side``/``head`` modes) the module stays in eval mode
            whatever ``train()`` asks; ``full``/``lora`` set it to False.
        weights_sha256: sha256 of the loaded weight file, ``None`` if random.
        tap_dims, tap_strides: width and stride of each tapped map (a ViT's are all
            ``embed_dim`` / ``patch_size``; a CNN's differ, :mod:`effowt.backbones.cnn`).
    """

    model: nn.Module

    def __init__(
        self,
        name: str,
        embed_dim: int,
        patch_size: int,
        depth: int,
        taps: list[int],
        mean: tuple[float, float, float],
        std: tuple[float, float, float],
        lora_targets: list[str],
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        bad = [t for t in taps if not 0 <= t < depth]  # the rest of taps' checks: effowt.config.BackboneConfig
        if bad:
            raise ConfigError(
                f"model.backbone.taps: {bad} out of range for {name} ({depth} blocks, valid 0..{depth - 1})"
            )
        self.name = name
        self.embed_dim = embed_dim
        self.patch_size = patch_size
        self.depth = depth
        self.taps = list(taps)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.lora_targets = list(lora_targets)
        self.dtype = dtype
        self.frozen = True
        self.weights_sha256: str | None = None
        self.tap_dims = [embed_dim] * len(self.taps)
        self.tap_strides = [patch_size] * len(self.taps)

    def freeze(self) -> None:
        """No parameter of the backbone trains; it stays in eval mode."""
        self.requires_grad_(False)
        self.frozen = True
        self.eval()

    def unfreeze(self) -> None:
        """Every parameter trains and ``train()`` is honoured (``full`` mode)."""
        self.requires_grad_(True)
        self.frozen = False

    def train(self, mode: bool = True) -> FrozenBackbone:
        """Follow ``mode`` unless frozen: a frozen backbone is always in eval mode."""
        return super().train(mode and not self.frozen)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Tapped block outputs.

        Args:
            x: FloatTensor[B, 3, H, W], normalised with ``mean``/``std``; any H, W
                (zero-padded at the bottom/right to a multiple of ``patch_size``).

        Returns:
            one FloatTensor[B, D, ceil(H/p), ceil(W/p)] (float32) per entry of ``taps``
            (a CNN's tap k: ``[B, tap_dims[k], ceil(H/p) * p / tap_strides[k], ...]``).
        """
        p = self.patch_size
        pad_h, pad_w = -x.shape[-2] % p, -x.shape[-1] % p
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        feats = self._forward_taps(x.to(self.dtype))
        return [f.float() for f in feats]

    def _forward_taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """NCHW maps of the tapped blocks for an input whose size is a patch multiple."""
        raise NotImplementedError

    def block_weights(self, i: int) -> dict[str, torch.Tensor]:
        """Weights of block ``i`` in a standard layout (detached float32 copies).

        Keys: ``q``, ``k``, ``v``, ``proj``: [D, D] (``out x in``, like ``nn.Linear``);
        ``fc1``: [hidden, D]; ``fc2``: [D, hidden]; ``norm1``, ``norm2``: [D] (LayerNorm
        scales). For gated MLPs (SwiGLU in EVA-02) ``fc1`` is the value branch
        (``fc1_x``, or the first half of a fused ``fc1``), the one ``fc2`` reads.
        """
        raise NotImplementedError

    def identity(self) -> dict[str, str | None]:
        """``{"name", "weights_sha256"}``: what a checkpoint records about its backbone."""
        return {"name": self.name, "weights_sha256": self.weights_sha256}

    def _check_block(self, i: int, num_blocks: int) -> None:
        if not 0 <= i < num_blocks:
            raise IndexError(f"{self.name}: block {i} out of range (0..{num_blocks - 1})")


def standard_block_weights(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    proj: torch.Tensor,
    fc1: torch.Tensor,
    fc2: torch.Tensor,
    norm1: torch.Tensor,
    norm2: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """Pack block weights as detached float32 copies under :data:`BLOCK_WEIGHT_KEYS`."""
    values = (q, k, v, proj, fc1, fc2, norm1, norm2)
    return {key: t.detach().float().clone() for key, t in zip(BLOCK_WEIGHT_KEYS, values)}
