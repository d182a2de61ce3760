"""The hybrid CNN-Transformer side block, the attention mixer and the downsamplers.

A side block at width ``C`` on an NCHW map (pre-norm residuals throughout)::

    x = x + dwconv3x3(norm0(x))      # CNN part: locality, translation equivariance
    x = x + mixer(norm1(x))          # SIM (sim_stages) or multi-head self-attention
    x = x + mlp(norm2(x))            # channel MLP, hidden = C * mlp_ratio

``hybrid=False`` replaces the CNN part by ``nn.Identity`` (pure Transformer).
Norms are LayerNorm over channels (batch-independent; detection batches are
small). The attention and MLP layer names (``qkv``, ``proj``, ``fc1``, ``fc2``,
``norm1``, ``norm2``) mirror a ViT block so that :mod:`effowt.side.pruning` can
copy the backbone's weights into them.

``WindowAttention`` (``SideConfig.attention_window > 0``, our inference-cost switch,
Swin's non-overlapping windows without the shift): the map is zero-padded at the
bottom/right to a multiple of the window, cut into ``window x window`` windows
that attend within themselves, and cropped back (a window is at most the map's
size along each axis, so a window over the whole map is global attention). Cost per token falls from the
whole map's ``H W`` keys to ``window^2``; the padded tokens take part as keys
(zeros after ``norm1`` plus the ``qkv`` bias), as in Swin's padding.

Downsampling between stages (stride 2, width kept at ``C``): hybrid ->
depthwise 3x3 stride-2 conv, 1x1 conv, LayerNorm (a MobileNet-style separable
reduction: 2.3 K + 66 K parameters at C = 256, where a dense 3x3 stride-2 conv
would cost 0.59 M); pure -> Swin-style 2x2 patch merging (space-to-depth,
LayerNorm(4C), Linear(4C -> C)), which has no convolution but costs 4 C^2.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from effowt.side.layers import LayerNorm2d, Mlp, Pointwise, from_tokens, to_tokens


class ConvResidual(nn.Module):
    """``x + dwconv3x3(norm(x))`` on ``[B, C, H, W]``: the CNN part of a hybrid block."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = LayerNorm2d(dim)
        self.conv = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(self.norm(x))


class Attention(nn.Module):
    """Global multi-head self-attention over the tokens of ``[B, C, H, W]``
    (``F.scaled_dot_product_attention``). ``qkv`` stacks q, k, v row-wise (``[3C, C]``)."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"side width {dim} is not divisible by SideConfig.num_heads={num_heads}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        tokens = to_tokens(x)
        qkv = self.qkv(tokens).reshape(b, h * w, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v)
        return from_tokens(self.proj(out.transpose(1, 2).reshape(b, h * w, c)), (h, w))


class WindowAttention(Attention):
    """Multi-head self-attention within non-overlapping ``window x window`` windows of
    ``[B, C, H, W]`` (same parameters as :class:`Attention`; see the module docstring)."""

    def __init__(self, dim: int, num_heads: int, window: int) -> None:
        super().__init__(dim, num_heads)
        if window < 1:
            raise ValueError(f"SideConfig.attention_window must be >= 1 here, got {window}")
        self.window = window

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        sh, sw = min(self.window, h), min(self.window, w)  # a window over the whole map is global attention
        x = F.pad(x, (0, -w % sw, 0, -h % sh))
        hp, wp = x.shape[-2:]
        windows = x.reshape(b, c, hp // sh, sh, wp // sw, sw).permute(0, 2, 4, 1, 3, 5).reshape(-1, c, sh, sw)
        out = super().forward(windows)
        out = out.reshape(b, hp // sh, wp // sw, c, sh, sw).permute(0, 3, 1, 4, 2, 5).reshape(b, c, hp, wp)
        return out[..., :h, :w]

    def extra_repr(self) -> str:
        return f"window={self.window}"


class SideBlock(nn.Module):
    """Hybrid CNN-Transformer side block: ``[B, C, H, W] -> [B, C, H, W]`` (see module docstring)."""

    def __init__(self, dim: int, mixer: nn.Module, mlp_ratio: float, hybrid: bool = True) -> None:
        super().__init__()
        hidden = int(round(dim * mlp_ratio))
        if hidden < 1:
            raise ValueError(f"SideConfig.mlp_ratio={mlp_ratio} gives an empty MLP at width {dim}")
        self.local = ConvResidual(dim) if hybrid else nn.Identity()
        self.norm1 = LayerNorm2d(dim)
        self.mixer = mixer
        self.norm2 = LayerNorm2d(dim)
        self.mlp = Mlp(dim, hidden)

    def forward(self, x: Tensor) -> Tensor:
        x = self.local(x)
        x = x + self.mixer(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class BlockSequence(nn.Sequential):
    """Side blocks run in order; with ``grad_checkpointing`` each block's activations
    are recomputed in backward instead of stored (``torch.utils.checkpoint``,
    non-reentrant), trading compute for training memory. An empty sequence is the identity."""

    def __init__(self, blocks: Iterable[nn.Module] = (), grad_checkpointing: bool = False) -> None:
        super().__init__(*blocks)
        self.grad_checkpointing = grad_checkpointing

    def forward(self, x: Tensor) -> Tensor:
        for block in self:
            if self.grad_checkpointing and torch.is_grad_enabled():
                x = checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return x


class ConvDownsample(nn.Sequential):
    """Hybrid stride-2 reduction ``[B, C, H, W] -> [B, C, H/2, W/2]``:
    depthwise 3x3 stride-2 conv, 1x1 conv, LayerNorm."""

    def __init__(self, dim: int) -> None:
        super().__init__(
            nn.Conv2d(dim, dim, 3, stride=2, padding=1, groups=dim),
            nn.Conv2d(dim, dim, 1),
            LayerNorm2d(dim),
        )


class PatchMerging(nn.Module):
    """Pure-Transformer stride-2 reduction ``[B, C, H, W] -> [B, C, H/2, W/2]``:
    each 2x2 patch's 4C values -> LayerNorm -> Linear(4C -> C) (Swin, width kept)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = LayerNorm2d(4 * dim)
        self.reduction = Pointwise(4 * dim, dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.reduction(self.norm(F.pixel_unshuffle(x, 2)))
