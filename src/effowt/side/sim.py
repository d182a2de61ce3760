"""SIM: the Sparse Interaction MLP, EffOWT's token mixer for the 1/4 side stage.

The paper restricts the MLP's token interactions to the horizontal, vertical,
diagonal and anti-diagonal lines through each token. Nobody published its code;
this follows the nearest published design, sMLP (Sparse MLP, AAAI 2022; notes
section 3): each direction mixes the tokens of a line with ONE ``N x N`` weight
matrix (plus an ``N`` bias) shared by every parallel line and every channel; the
identity and the mixed maps are concatenated on channels and fused by a 1x1
projection (``(1 + M) C -> C`` for M mixed maps: ``5C -> C`` for ``lines``,
``3C -> C`` for ``axial``, as sMLP).

Our choices (the paper is silent):

* **Diagonals by shearing with zero padding.** Row ``i`` is shifted right by
  ``i`` into a ``N x (2N - 1)`` zero-padded map, so that every anti-diagonal
  (``i + j = c``) becomes a column; the columns are mixed like vertical lines and
  the map is sheared back. The diagonal (``j - i = c``) is the anti-diagonal of
  the left-right flipped map. Wrap-around
  (rolling within ``N`` columns) would join tokens at opposite borders of the
  image into one "diagonal" (a torus); zero padding keeps true diagonals, at
  twice the matmul cost of an axis branch. The mixing weight is indexed by the
  row, i.e. by position along the diagonal, the same matrix for all diagonals.
* **A fixed square token grid.** Feature maps vary in size and aspect ratio
  (multi-scale training), but a weight matrix needs a fixed line length. Each
  SIM runs on an ``N x N`` grid (``SideConfig.sim_grid`` at stride 4, scaled by
  ``4 / stride`` in other stages): the block input is resampled to the grid
  (bilinear when growing, area-averaged when shrinking, see
  :func:`effowt.side.layers.resize`), mixed, and the mixed maps are resampled
  back to the map's size. The identity branch is NOT resampled: it enters the fusing
  projection at full resolution, so detail finer than the grid is kept and only
  the long-range interaction is computed on the grid. Non-square maps are
  stretched onto the square grid, so "diagonal" means diagonal in grid space.
* **Patterns.** ``lines`` = vertical, horizontal, diagonal, anti-diagonal.
  ``axial`` = vertical + horizontal (sMLP). ``wide`` = the four lines widened to
  bands, for small maps (the paper saw SIM hurt at 1/8 and 1/16, where a line
  holds few tokens): an output token gathers from its own line and the
  ``band`` parallel lines on each side, with a separate ``N x N`` matrix per line
  offset, i.e. ``(2 band + 1) N^2`` weights per direction, a banded version of
  the same mixing; cost and interaction set grow by ``2 band + 1``, still far
  from dense. ``dense`` = one full token-mixing linear map over all ``N^2`` grid
  tokens (``N^2 x N^2`` weights, the ``mlp_dense`` ablation); it is a single
  linear layer like the sparse branches, so the ablation changes only sparsity.
  ``random`` = ``lines`` on randomly shuffled tokens: a fixed random permutation
  of the ``N^2`` grid tokens (seed 0, the same in every block) is applied before
  the four line mixers and undone after them, so the tokens interact through
  the same weights and as many pairs as with ``lines`` (a token gets the
  partners of the grid position it is shuffled to), but with partners
  scattered over the map instead of on its lines: the check of
  whether the *directional* structure of the sparsity matters (the seed's own
  suggestion; the ``sim_random`` ablation).
* **Projecting on the grid** (``SideConfig.sim_project_first``, an inference-cost
  switch, off by default). The fusing projection is linear per pixel and the
  resampling back is linear per channel, so they commute:
  ``fuse(cat[x, up(m)]) = W_x x + up(W_m m) + b`` with ``W = [W_x | W_m]`` the same
  weight. :class:`GridProjectedSIM` computes the right-hand side: the ``4C -> C``
  part runs on the ``N x N`` grid instead of the map, one ``C -> C`` slice per
  mixed map summed, so no ``5C``-wide map is concatenated. The same function and parameters (outputs equal up to float
  rounding), cheaper whenever the grid is coarser than the map.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from effowt.config import SimPattern
from effowt.side.layers import Pointwise, resize

SIM_PATTERNS: tuple[str, ...] = get_args(SimPattern)
RANDOM_PATTERN_SEED = 0
_LINES = ("vertical", "horizontal", "diagonal", "anti_diagonal")


def shear(x: Tensor) -> Tensor:
    """Shift row ``i`` of ``[..., H, W]`` right by ``i`` into a zero-filled ``[..., H, W + H - 1]``:
    ``out[..., i, j + i] = x[..., i, j]``, so column ``c`` holds the anti-diagonal ``i + j = c``."""
    h, w = x.shape[-2:]
    flat = F.pad(x, (0, h)).flatten(-2)
    return flat[..., : h * (w + h - 1)].unflatten(-1, (h, w + h - 1))


def unshear(y: Tensor, width: int) -> Tensor:
    """Inverse of :func:`shear`: ``[..., H, W + H - 1] -> [..., H, W]``, ``out[..., i, j] = y[..., i, j + i]``."""
    h = y.shape[-2]
    flat = F.pad(y.flatten(-2), (0, h))
    return flat.unflatten(-1, (h, width + h))[..., :width]


def _transpose(x: Tensor) -> Tensor:
    return x.transpose(-1, -2)


def _identity(x: Tensor) -> Tensor:
    return x


def _flip_shear(x: Tensor) -> Tensor:
    return shear(x.flip(-1))


def _flip_unshear(y: Tensor, width: int) -> Tensor:
    return unshear(y, width).flip(-1)


# direction -> (map to "lines are columns", inverse taking the original width)
_DIRECTIONS: dict[str, tuple[Callable[[Tensor], Tensor], Callable[[Tensor, int], Tensor]]] = {
    "vertical": (_identity, lambda y, w: y),
    "horizontal": (_transpose, lambda y, w: _transpose(y)),
    "diagonal": (_flip_shear, _flip_unshear),
    "anti_diagonal": (shear, unshear),
}


class LineMix(nn.Module):
    """Token mixing along one family of lines on an ``N x N`` grid: ``[B, C, N, N] -> same``.

    The map is rearranged so that its lines are the columns of a ``[B, C, N, L]``
    map (``direction`` picks how: none, transpose, shear, flipped shear), each
    column is mixed by ``weight[band]`` (``N x N``), the ``band`` neighbouring
    columns on each side by their own ``N x N`` matrices (zero outside the map),
    and the result is rearranged back. The weights are shared by all lines and
    all channels.
    """

    def __init__(self, n: int, direction: str, band: int = 0) -> None:
        super().__init__()
        if direction not in _DIRECTIONS:
            raise ValueError(f"unknown line direction {direction!r} (valid: {', '.join(_DIRECTIONS)})")
        if band < 0:
            raise ValueError(f"sim_band must be >= 0, got {band}")
        self.n, self.direction, self.band = n, direction, band
        self._to_columns, self._from_columns = _DIRECTIONS[direction]
        bound = 1 / math.sqrt(n * (2 * band + 1))  # nn.Linear's default range
        self.weight = nn.Parameter(torch.empty(2 * band + 1, n, n).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n).uniform_(-bound, bound))

    def forward(self, x: Tensor) -> Tensor:
        cols = self._to_columns(x)
        length = cols.shape[-1]
        padded = F.pad(cols, (self.band, self.band))
        y = sum(
            torch.matmul(w, padded[..., k : k + length]) for k, w in enumerate(self.weight)
        )
        return self._from_columns(y + self.bias[:, None], x.shape[-1])

    def extra_repr(self) -> str:
        return f"n={self.n}, direction={self.direction}, band={self.band}"


class DenseMix(nn.Module):
    """Full token mixing over all ``N^2`` grid tokens: ``[B, C, N, N] -> same`` (the ablation)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.linear = nn.Linear(n * n, n * n)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x.flatten(-2)).view_as(x)


class PermutedMix(nn.Module):
    """``mixer`` applied to the grid's tokens in a fixed random order: ``[B, C, N, N] -> same``,
    ``out = unpermute(mixer(permute(x)))`` (the ``random`` pattern)."""

    def __init__(self, mixer: nn.Module, n: int, seed: int = RANDOM_PATTERN_SEED) -> None:
        super().__init__()
        self.mixer = mixer
        order = torch.randperm(n * n, generator=torch.Generator().manual_seed(seed))
        self.register_buffer("order", order, persistent=False)
        self.register_buffer("inverse", torch.argsort(order), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        shuffled = x.flatten(-2)[..., self.order].view_as(x)
        return self.mixer(shuffled).flatten(-2)[..., self.inverse].view_as(x)


def _build_mixers(pattern: str, n: int, band: int) -> list[nn.Module]:
    if pattern == "lines":
        return [LineMix(n, d) for d in _LINES]
    if pattern == "axial":
        return [LineMix(n, d) for d in _LINES[:2]]
    if pattern == "wide":
        return [LineMix(n, d, band) for d in _LINES]
    if pattern == "dense":
        return [DenseMix(n)]
    if pattern == "random":
        return [PermutedMix(LineMix(n, d), n) for d in _LINES]
    raise ValueError(f"SideConfig.sim_pattern must be one of {', '.join(SIM_PATTERNS)}, got {pattern!r}")


class SparseInteractionMLP(nn.Module):
    """SIM token mixer: ``[B, C, H, W] -> [B, C, H, W]``.

    ``fuse(cat[x, up(mix_1(down(x))), ..., up(mix_M(down(x)))])`` where ``down``/``up``
    resample between the map and the ``grid x grid`` token grid (no-ops when the
    map is the grid's size) and ``fuse`` is a ``(1 + M) C -> C`` per-pixel linear map.
    ``pattern`` is one of :data:`SIM_PATTERNS`; ``band`` is used by ``wide`` only.
    See the module docstring for the patterns and the choices behind them.
    """

    def __init__(self, dim: int, grid: int, pattern: str = "lines", band: int = 1) -> None:
        super().__init__()
        if grid < 1:
            raise ValueError(f"SIM grid must be >= 1, got {grid}")
        self.grid, self.pattern = grid, pattern
        self.mixers = nn.ModuleList(_build_mixers(pattern, grid, band))
        self.fuse = Pointwise((1 + len(self.mixers)) * dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        z = resize(x, (self.grid, self.grid))
        mixed = torch.cat([mix(z) for mix in self.mixers], dim=1)
        return self.fuse(torch.cat([x, resize(mixed, x.shape[-2:])], dim=1))

    def extra_repr(self) -> str:
        return f"grid={self.grid}, pattern={self.pattern}"


class GridProjectedSIM(SparseInteractionMLP):
    """:class:`SparseInteractionMLP` computed as ``W_x x + up(W_m mix(down(x))) + b``:
    the same function and weights, the mixed maps projected on the grid before
    resampling (see "Projecting on the grid" in the module docstring)."""

    def forward(self, x: Tensor) -> Tensor:
        z = resize(x, (self.grid, self.grid))
        parts = self.fuse.weight.chunk(1 + len(self.mixers), dim=1)  # W_x, then one C x C per mixer
        mixed = sum(F.linear(mix(z).permute(0, 2, 3, 1), w) for mix, w in zip(self.mixers, parts[1:]))
        own = F.linear(x.permute(0, 2, 3, 1), parts[0], self.fuse.bias)
        return own.permute(0, 3, 1, 2) + resize(mixed.permute(0, 3, 1, 2), x.shape[-2:])
