"""The EffOWT side network: stem, three gated hybrid stages, multi-scale fusion.

Data flow (``C`` = side width, taps = tapped backbone maps ``[B, D, h, w]`` in
block order)::

    images [B,3,H,W] -> stem (4x4 stride-4 patchify + LayerNorm) -> f_s at 1/4
    stage s4:  for each of its taps: f_s = blocks_tap(gate(ladder(tap), f_s));  f_s = blocks_stage(f_s)
    stage s8:  f_s = downsample(f_s); the same with its taps
    stage s16: f_s = downsample(f_s); the same with its taps
    fusion: the three stage maps -> {"p8": [B,out,H/8,W/8], "p16": ..., "p32": ...}
    output: replace (the fused maps are the pyramid) | residual (last tap's linear
            pyramid + scale * fused maps, scale starting at 0); see effowt.side.anchor

``SideConfig.stage_taps = [n4, n8, n16]`` hands the taps to the stages in order
(shallow taps to the fine stage). Every tap has its own ladder
(:class:`SideConnection`, ``Linear(D -> C)``) and gate (:class:`GateFusion`).
After each tap run ``depth_per_tap`` side blocks (Ladder Side-Tuning's layout,
one side block per ladder), and after a stage's last tap run ``stage_depths[k]``
more blocks (our addition, below). Each stage's output is its final ``f_s``.

Our choices (the paper is silent; numbers at the paper scale, EVA-02-L/14,
``D = 1024``, ``C = 256``, six taps, out_channels 128):

* **Where the blocks go (``stage_depths``).** Ladders alone cost 4 C^2 = 0.26 M
  each (1.57 M for six); a side block costs 0.53 M (attention, mlp_ratio 2) or
  0.61 M (SIM: its ``5C -> C`` fusing projection is 0.33 M). One block per tap
  (the LST layout) measures 5.2-5.3 M for the side network alone, over the
  paper's 1.3 % of 304 M (~4 M including ~0.7 M of heads). So by default taps are gated into the stream
  one after the other and each stage owns its blocks, run once after its last
  tap: ``stage_taps = [4, 1, 1]``, ``stage_depths = [1, 1, 0]``,
  ``depth_per_tap = 0``. The s16 stage is the stride-2 downsampler plus the
  deepest tap's ladder and gate, without a block: the deepest backbone features
  are the most processed ones, and a block there (0.53 M) would push s16 to
  ~25 % of the side parameters, against the paper's 11.2 %. This measures
  s4/s8/s16 = 58.2 / 30.2 / 11.6 % (paper 59.1 / 29.7 / 11.2) and 2.96 M in
  total. The LST layout is ``depth_per_tap = 1, stage_depths = [0, 0, 0]``.
* **Width.** ``C = SideConfig.width`` if set, else ``embed_dim / reduction``
  rounded to the nearest multiple of ``lcm(8, num_heads)`` (whole heads;
  multiples of 8 suit tensor cores); 1024 / 4 = 256 stays 256.
* **Stem.** A 4x4 stride-4 patchify conv (3 -> C) + LayerNorm gives the side
  stream its 1/4-resolution start from the pixels (12.8 K parameters), since the
  backbone's tokens are at 1/14 or 1/16. It is a linear patch embedding (ViT's
  ``PatchEmbed`` is the same ``nn.Conv2d``), not a "CNN part", so the pure
  Transformer ablation (``hybrid=False``) keeps it: it is then the only
  ``nn.Conv2d`` in the side network.

Inference-cost switches (off by default, so the default computation is the one
above; measured in docs/benchmarks/speed.md, "Where the time goes"):

* ``attention_window`` (changes the function): s8/s16 blocks attend within
  ``window x window`` windows (:class:`~effowt.side.blocks.WindowAttention`).
* ``ladder_merge`` (the same function): with ``depth_per_tap = 0`` nothing runs
  between a stage's taps but gates, and resampling is linear, so
  ``f_s <- g_k up(L_k) + (1 - g_k) f_s`` over the taps k equals
  ``prod_k(1 - g_k) f_s + up(sum_k c_k L_k)`` (``c_k = g_k prod_{j>k}(1 - g_j)``):
  :class:`MergedSideStage` gates the ladders at the backbone's token resolution
  and resamples once per stage instead of once per tap (4 -> 1 at s4)::

      acc = 0, keep = 1;  for each tap: acc = (1 - g) acc + g L(tap);  keep *= 1 - g
      f_s = blocks(keep * f_s + up(acc))

* ``sim_project_first`` (the same function): see
  :class:`~effowt.side.sim.GridProjectedSIM`.
"""

from __future__ import annotations

import math
from collections import OrderedDict

from torch import Tensor, nn

from effowt.config import STAGE_STRIDES, STAGES, SideConfig, check_side_fits
from effowt.side.anchor import build_output
from effowt.side.blocks import Attention, BlockSequence, ConvDownsample, PatchMerging, SideBlock, WindowAttention
from effowt.side.connections import SideConnection
from effowt.side.fusion import MultiScaleFusion
from effowt.side.gates import build_fusion_gate
from effowt.side.layers import LayerNorm2d
from effowt.side.sim import GridProjectedSIM, SparseInteractionMLP


def side_width(cfg: SideConfig, embed_dim: int) -> int:
    """Side width ``C``: ``cfg.width``, else ``embed_dim / cfg.reduction`` rounded to a
    multiple of ``lcm(8, cfg.num_heads)``."""
    if cfg.width is not None:
        return cfg.width
    multiple = math.lcm(8, cfg.num_heads)
    return multiple * max(1, round(embed_dim / cfg.reduction / multiple))


class TapUnit(nn.Module):
    """One tap's ladder + gate, then its blocks: ``f_s <- blocks(gate(ladder(tap), f_s))``."""

    def __init__(self, connection: SideConnection, gate: nn.Module, blocks: BlockSequence, tap_index: int) -> None:
        super().__init__()
        self.connection = connection
        self.gate = gate
        self.blocks = blocks
        self.tap_index = tap_index

    def forward(self, tap: Tensor, f_s: Tensor) -> Tensor:
        f_b = self.connection(tap, f_s.shape[-2:])
        return self.blocks(self.gate(f_b, f_s))


class SideStage(nn.Module):
    """One side stage: downsample (identity at s4), its tap units, its own blocks.

    ``init_tap`` is the tap whose backbone block initialises the stage's own blocks
    by pruning (its last tap, else the last tap of an earlier stage, else ``None``).
    """

    def __init__(self, downsample: nn.Module, units: list[TapUnit], blocks: BlockSequence,
                 init_tap: int | None) -> None:
        super().__init__()
        self.downsample = downsample
        self.units = nn.ModuleList(units)
        self.blocks = blocks
        self.init_tap = init_tap

    def forward(self, f_s: Tensor, taps: list[Tensor]) -> Tensor:
        f_s = self.downsample(f_s)
        for unit, tap in zip(self.units, taps):
            f_s = unit(tap, f_s)
        return self.blocks(f_s)


class MergedSideStage(SideStage):
    """:class:`SideStage` with its taps gated at their own resolution and resampled
    once (``SideConfig.ladder_merge``; units without blocks, taps of one size): the
    same function, see the module docstring."""

    def forward(self, f_s: Tensor, taps: list[Tensor]) -> Tensor:
        f_s = self.downsample(f_s)
        acc: Tensor | float = 0.0
        keep: Tensor | float = 1.0
        for unit, tap in zip(self.units, taps):
            g, rest = unit.gate.coefficients()
            acc = rest * acc + g * unit.connection.project(tap)
            keep = keep * rest
        return self.blocks(keep * f_s + unit.connection.resample(acc, f_s.shape[-2:]))


class SideNetwork(nn.Module):
    """EffOWT side network (see the module docstring for the layout and choices).

    Args:
        cfg: the side configuration.
        embed_dim: the backbone's width ``D`` (of its last tap; sets the default width).
        num_taps: how many backbone maps ``forward`` receives (``len(BackboneConfig.taps)``).
        tap_dims: each tap's width when they differ (a CNN's stages,
            ``FrozenBackbone.tap_dims``); default ``[embed_dim] * num_taps``. Our choice
            for a CNN (the paper is silent): nothing else changes, since every ladder
            already resamples its tap to its stage's resolution; give each stage the
            taps nearest its stride through ``stage_taps``.
        out_channels: pyramid width given to the heads.
        out_strides: pyramid strides, e.g. ``[8, 16, 32]`` (powers of two >= 4).
    """

    def __init__(self, cfg: SideConfig, embed_dim: int, num_taps: int, out_channels: int,
                 out_strides: list[int], tap_dims: list[int] | None = None) -> None:
        super().__init__()
        check_side_fits(cfg, num_taps, out_strides)  # num_taps comes from the backbone, not the config
        tap_dims = [embed_dim] * num_taps if tap_dims is None else list(tap_dims)
        if len(tap_dims) != num_taps:
            raise ValueError(f"tap_dims has {len(tap_dims)} entries for {num_taps} taps")
        self.cfg = cfg
        self.width = width = side_width(cfg, embed_dim)
        self.embed_dim, self.num_taps = embed_dim, num_taps
        self.out_channels, self.out_strides = out_channels, list(out_strides)
        self.size_divisor = max(32, *out_strides)

        self.stem = nn.Sequential(nn.Conv2d(3, width, 4, stride=4), LayerNorm2d(width))
        self.stages = nn.ModuleDict()
        tap = 0
        for k, name in enumerate(STAGES):
            units = []
            for _ in range(cfg.stage_taps[k]):
                blocks = self._blocks(name, cfg.depth_per_tap)
                gate = build_fusion_gate(cfg.gates, cfg.gate_temperature, cfg.gate_init)
                units.append(TapUnit(SideConnection(tap_dims[tap], width), gate, blocks, tap))
                tap += 1
            downsample = nn.Identity() if k == 0 else (ConvDownsample(width) if cfg.hybrid else PatchMerging(width))
            init_tap = tap - 1 if tap else None
            stage = MergedSideStage if cfg.ladder_merge and units else SideStage
            self.stages[name] = stage(downsample, units, self._blocks(name, cfg.stage_depths[k]), init_tap)

        fused = list(STAGES) if cfg.fusion else [STAGES[-1]]
        self._first_fused = len(STAGES) - len(fused)
        self.fusion = MultiScaleFusion(width, out_channels, [STAGE_STRIDES[s] for s in fused], out_strides)
        self.output = build_output(cfg.output, embed_dim, out_channels, out_strides, cfg.residual_init)

    def _blocks(self, stage: str, depth: int) -> BlockSequence:
        cfg = self.cfg
        blocks = []
        for _ in range(depth):
            if stage in cfg.sim_stages:
                grid = cfg.sim_grid * 4 // STAGE_STRIDES[stage]
                sim = GridProjectedSIM if cfg.sim_project_first else SparseInteractionMLP
                mixer: nn.Module = sim(self.width, grid, cfg.sim_pattern, cfg.sim_band)
            elif cfg.attention_window:
                mixer = WindowAttention(self.width, cfg.num_heads, cfg.attention_window)
            else:
                mixer = Attention(self.width, cfg.num_heads)
            blocks.append(SideBlock(self.width, mixer, cfg.mlp_ratio, cfg.hybrid))
        return BlockSequence(blocks, cfg.grad_checkpointing)

    def forward(self, images: Tensor, taps: list[Tensor]) -> OrderedDict[str, Tensor]:
        """Side features of normalised ``images`` (``FloatTensor[B, 3, H, W]``, ``H, W``
        multiples of ``size_divisor`` (32)) and the backbone ``taps``
        (``num_taps`` maps ``[B, D, h, w]``, any ``h, w``) ->
        ``OrderedDict {"p<s>": FloatTensor[B, out_channels, H/s, W/s]}`` in ``out_strides`` order."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be [B, 3, H, W], got {tuple(images.shape)}")
        h, w = images.shape[-2:]
        if h % self.size_divisor or w % self.size_divisor:
            raise ValueError(f"image size {h}x{w} is not a multiple of {self.size_divisor} (pad it first)")
        if len(taps) != self.num_taps:
            raise ValueError(f"side network built for {self.num_taps} taps, got {len(taps)}")
        f_s = self.stem(images)
        maps = []
        start = 0
        for stage in self.stages.values():
            end = start + len(stage.units)
            f_s = stage(f_s, taps[start:end])
            maps.append(f_s)
            start = end
        return self.output(self.fusion(maps[self._first_fused :]), images, taps)

    def blocks_with_taps(self) -> list[tuple[SideBlock, int | None]]:
        """Every side block with the tap index whose backbone block initialises it
        (``None``: before any tap, random init)."""
        pairs: list[tuple[SideBlock, int | None]] = []
        for stage in self.stages.values():
            for unit in stage.units:
                pairs.extend((block, unit.tap_index) for block in unit.blocks)
            pairs.extend((block, stage.init_tap) for block in stage.blocks)
        return pairs

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each side block in backward instead of storing its activations."""
        for module in self.modules():
            if isinstance(module, BlockSequence):
                module.grad_checkpointing = enable

    def stage_parameter_split(self) -> dict[str, int]:
        """Parameter counts per stage ``{"s4": n, "s8": n, "s16": n}``.

        A stage counts its ladders, gates, blocks and the downsampler entering it.
        The stem (before s4), the fusion (after s16) and the output's base path are NOT
        counted; they are
        ``sum(p.numel() for p in self.parameters())`` minus the three.
        """
        return {name: sum(p.numel() for p in stage.parameters()) for name, stage in self.stages.items()}
