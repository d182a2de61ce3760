"""Structural-pruning initialisation of the side blocks (Ladder Side-Tuning style).

Each side block is initialised from the backbone block of the tap it follows
(:meth:`SideNetwork.blocks_with_taps`): its attention (``qkv``, ``proj``), its
MLP (``fc1``, ``fc2``) and their pre-norms (``norm1``, ``norm2``) become slices
of that block's weights. SIM blocks take only the MLP and ``norm2`` (their token
mixer has no backbone counterpart); the depthwise convs, the SIM and everything
outside the blocks (stem, ladders, gates, downsamplers, fusion) keep their
random init, as LST's ladders do.

Selection, layer by layer (notes section 2), with a row's importance the L1 norm
of ``weight * importance`` (``importance`` = 1, i.e. magnitude pruning, when no
data-driven scores are given):

* residual stream: the ``C`` channels with the largest summed importance of the
  rows of ``proj`` and ``fc2``, the two layers that write the stream (our choice:
  the stream must use one channel set for both residual branches). ``norm1``,
  ``norm2``, the input columns of ``q, k, v, fc1`` and the output rows of
  ``proj, fc2`` are sliced with it;
* attention: ``q, k, v`` pruned jointly to the ``C`` rows with the largest summed
  importance (one set, so that query, key and value channels stay aligned);
  ``proj``'s input columns are sliced with it. Heads are not kept whole: the side
  attention regroups the kept channels into its own ``num_heads`` heads;
* MLP hidden: the ``round(C * mlp_ratio)`` rows of ``fc1`` with the largest
  importance; ``fc2``'s input columns are sliced with them.

Kept indices are in ascending order. The adapter gives weights only, so the
biases of the copied linear layers are set to zero. Several blocks after one tap
all start from the same backbone block.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from effowt.side.blocks import Attention, SideBlock
from effowt.side.network import SideNetwork

BlockWeights = dict[str, Tensor]


def _row_scores(name: str, weights: BlockWeights, importance: BlockWeights | None) -> Tensor:
    w = weights[name]
    if importance is not None:
        w = w * importance[name]
    return w.abs().sum(dim=1)


def _top(scores: Tensor, k: int, what: str) -> Tensor:
    if k > scores.numel():
        raise ValueError(f"cannot keep {k} {what} out of {scores.numel()}: the side network is wider than the backbone")
    return scores.topk(k).indices.sort().values


def select_indices(weights: BlockWeights, width: int, hidden: int,
                   importance: BlockWeights | None = None) -> dict[str, Tensor]:
    """Kept indices ``{"stream": [C], "attn": [C], "hidden": [hidden]}`` for one backbone block."""
    stream = _row_scores("proj", weights, importance) + _row_scores("fc2", weights, importance)
    attn = sum(_row_scores(key, weights, importance) for key in ("q", "k", "v"))
    return {
        "stream": _top(stream, width, "stream channels"),
        "attn": _top(attn, width, "attention channels"),
        "hidden": _top(_row_scores("fc1", weights, importance), hidden, "MLP hidden units"),
    }


def _copy_linear_(layer: nn.Linear, weight: Tensor) -> None:
    if layer.weight.shape != weight.shape:
        raise ValueError(f"pruned weight {tuple(weight.shape)} does not fit side layer {tuple(layer.weight.shape)}")
    layer.weight.copy_(weight)
    if layer.bias is not None:
        layer.bias.zero_()


def _init_block_(block: SideBlock, weights: BlockWeights, importance: BlockWeights | None) -> None:
    width = block.norm2.weight.numel()
    idx = select_indices(weights, width, block.mlp.fc1.out_features, importance)
    s, a, h = idx["stream"], idx["attn"], idx["hidden"]
    if isinstance(block.mixer, Attention):
        qkv = torch.cat([weights[key][a][:, s] for key in ("q", "k", "v")])
        _copy_linear_(block.mixer.qkv, qkv)
        _copy_linear_(block.mixer.proj, weights["proj"][s][:, a])
        block.norm1.weight.copy_(weights["norm1"][s])
    _copy_linear_(block.mlp.fc1, weights["fc1"][h][:, s])
    _copy_linear_(block.mlp.fc2, weights["fc2"][s][:, h])
    block.norm2.weight.copy_(weights["norm2"][s])


@torch.no_grad()
def prune_init_(
    side: SideNetwork,
    block_weights: Callable[[int], BlockWeights],
    tap_blocks: list[int],
    importance: dict[int, BlockWeights] | None = None,
) -> None:
    """Initialise ``side``'s blocks in place from pruned backbone blocks.

    Args:
        side: the side network.
        block_weights: ``i -> {"q","k","v","proj": [D, D], "fc1": [hidden, D],
            "fc2": [D, hidden], "norm1","norm2": [D]}`` for backbone block ``i``
            (``Backbone.block_weights``).
        tap_blocks: the backbone block index of each tap (``Backbone.taps``).
        importance: optional data-driven scores, ``{block index: {key: tensor of
            the weight's shape}}`` (e.g. accumulated squared gradients, as LST);
            ``None`` means magnitude pruning.
    """
    if len(tap_blocks) != side.num_taps:
        raise ValueError(f"tap_blocks has {len(tap_blocks)} entries, the side network has {side.num_taps} taps")
    cache: dict[int, BlockWeights] = {}
    for block, tap in side.blocks_with_taps():
        if tap is None:
            continue
        index = tap_blocks[tap]
        if index not in cache:
            cache[index] = {k: v.detach().float().cpu() for k, v in block_weights(index).items()}
        scores = None if importance is None else importance[index]
        _init_block_(block, cache[index], scores)
