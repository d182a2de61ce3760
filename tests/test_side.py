"""Side network: shapes, gates, SIM locality, hybrid/pure, gradients, pruning init, checkpointing."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from effowt.config import SideConfig
from effowt.errors import ConfigError
from effowt.side import (
    Attention,
    GateFusion,
    MultiScaleFusion,
    SideNetwork,
    SparseInteractionMLP,
    SumFusion,
    prune_init_,
    side_width,
)
from effowt.side.layers import resize
from effowt.side.pruning import select_indices
from effowt.side.sim import shear, unshear

D = 24  # tiny backbone width
H, W = 64, 96  # non-square, multiples of 32


def small_cfg(**kw) -> SideConfig:
    base = dict(
        width=16, num_heads=2, stage_taps=[2, 1, 1], stage_depths=[1, 1, 1], depth_per_tap=1,
        sim_grid=8, mlp_ratio=2.0,
    )
    base.update(kw)
    return SideConfig(**base)


def inputs(num_taps: int = 4, batch: int = 2) -> tuple[torch.Tensor, list[torch.Tensor]]:
    images = torch.randn(batch, 3, H, W)
    taps = [torch.randn(batch, D, H // 16, W // 16) for _ in range(num_taps)]
    return images, taps


def test_output_keys_and_shapes_non_square():
    net = SideNetwork(small_cfg(), D, 4, 32, [8, 16, 32])
    out = net(*inputs())
    assert list(out) == ["p8", "p16", "p32"]
    for s in (8, 16, 32):
        assert out[f"p{s}"].shape == (2, 32, H // s, W // s)
        assert torch.isfinite(out[f"p{s}"]).all()


def test_output_strides_beyond_stages_and_finer():
    net = SideNetwork(small_cfg(fusion=False), D, 4, 8, [4, 8, 16, 32])
    out = net(*inputs(batch=1))
    assert [tuple(v.shape) for v in out.values()] == [(1, 8, H // s, W // s) for s in (4, 8, 16, 32)]


def test_bad_inputs_raise():
    net = SideNetwork(small_cfg(), D, 4, 32, [8, 16, 32])
    images, taps = inputs()
    with pytest.raises(ValueError, match="taps"):
        net(images, taps[:3])
    with pytest.raises(ValueError, match="multiple of 32"):
        net(images[..., :80], taps)


def test_stage_taps_mismatch_names_the_field():
    with pytest.raises(ValueError, match="stage_taps"):
        SideNetwork(small_cfg(stage_taps=[2, 1, 1]), D, 6, 32, [8, 16, 32])
    with pytest.raises(ValueError, match="sim_pattern"):
        SideNetwork(small_cfg(sim_pattern="zigzag"), D, 4, 32, [8, 16, 32])


def test_gate_starts_as_exact_average_and_learns():
    gate = GateFusion(temperature=0.1)
    a, b = torch.randn(2, 3, 4, 5), torch.randn(2, 3, 4, 5)
    assert gate.gate.item() == 0.5
    out = gate(a, b)
    assert torch.equal(out, 0.5 * a + 0.5 * b)
    out.square().sum().backward()
    assert gate.alpha.grad is not None and gate.alpha.grad.abs() > 0
    with torch.no_grad():
        gate.alpha.fill_(2.0)  # g = sigmoid(20) ~ 1: all weight on the backbone term
    assert torch.allclose(gate(a, b), a, atol=1e-4)


@pytest.mark.parametrize("init", [0.1, 0.5, 0.9])
def test_gate_init_sets_the_starting_gate(init):
    gate = GateFusion(temperature=0.1, init=init)
    assert gate.gate.item() == pytest.approx(init, abs=1e-6)
    net = SideNetwork(small_cfg(gate_init=init), D, 4, 32, [8, 16, 32])
    gates = [m.gate.item() for m in net.modules() if isinstance(m, GateFusion)]
    assert len(gates) == 4 and gates == pytest.approx([init] * 4, abs=1e-6)


@pytest.mark.parametrize("key,value", [("gate_init", 1.0), ("gate_init", 0.0), ("output", "add")])
def test_bad_start_settings_name_the_key(key, value):
    with pytest.raises(ConfigError, match=f"model.side.{key}"):
        SideNetwork(small_cfg(**{key: value}), D, 4, 32, [8, 16, 32])


def test_residual_output_starts_at_the_base_and_trains_the_scale_first():
    net = SideNetwork(small_cfg(output="residual"), D, 4, 32, [8, 16, 32])
    images, taps = inputs()
    out = net(images, taps)
    base = net.output.base(images, taps)
    assert list(out) == list(base) == ["p8", "p16", "p32"]
    assert all(torch.equal(out[k], base[k]) for k in out)
    sum(v.square().sum() for v in out.values()).backward()
    assert all(p.grad.abs().sum() > 0 for p in net.output.scale.values())
    assert net.stem[0].weight.grad.abs().sum() == 0  # no signal through a zero scale yet
    assert net.output.base.proj.weight.grad.abs().sum() > 0


def test_no_gate_is_plain_sum():
    assert torch.equal(SumFusion()(torch.ones(2), torch.full((2,), 2.0)), torch.full((2,), 3.0))
    net = SideNetwork(small_cfg(gates=False), D, 4, 32, [8, 16, 32])
    assert not any(isinstance(m, GateFusion) for m in net.modules())
    assert sum(isinstance(m, SumFusion) for m in net.modules()) == 4


def test_shear_round_trip_and_layout():
    x = torch.arange(12.0).view(3, 4)
    y = shear(x)
    assert y.shape == (3, 6)
    assert torch.equal(y[:, 2], torch.tensor([2.0, 5.0, 8.0]))  # anti-diagonal i + j = 2
    assert torch.equal(unshear(y, 4), x)


def changed_tokens(sim: nn.Module, n: int, i: int, j: int) -> torch.Tensor:
    """Boolean [n, n] map of the outputs that change when token (i, j) is perturbed."""
    x = torch.randn(1, 3, n, n, dtype=torch.float64)
    x2 = x.clone()
    x2[0, :, i, j] += 1.0
    with torch.no_grad():
        return (sim(x2) - sim(x)).abs().sum(1)[0] > 1e-9


def line_mask(n: int, i: int, j: int, band: int, diagonals: bool) -> torch.Tensor:
    r = torch.arange(n)[:, None].expand(n, n)
    c = torch.arange(n)[None, :].expand(n, n)
    mask = ((r - i).abs() <= band) | ((c - j).abs() <= band)
    if diagonals:
        mask |= (((c - r) - (j - i)).abs() <= band) | (((c + r) - (i + j)).abs() <= band)
    return mask


@pytest.mark.parametrize("pattern,diagonals", [("lines", True), ("axial", False)])
@pytest.mark.parametrize("token", [(4, 2), (0, 8), (7, 7)])
def test_sim_locality(pattern, diagonals, token):
    n = 9
    sim = SparseInteractionMLP(3, n, pattern).double()
    assert torch.equal(changed_tokens(sim, n, *token), line_mask(n, *token, band=0, diagonals=diagonals))


def test_sim_wide_mixes_bands_and_dense_mixes_everything():
    n = 9
    wide = SparseInteractionMLP(3, n, "wide", band=1).double()
    changed = changed_tokens(wide, n, 4, 2)
    assert torch.equal(changed, line_mask(n, 4, 2, band=1, diagonals=True))
    assert not changed.all()
    dense = SparseInteractionMLP(3, n, "dense").double()
    assert changed_tokens(dense, n, 4, 2).all()


def test_sim_random_scatters_as_many_interactions_as_lines():
    n = 9
    random_sim = SparseInteractionMLP(3, n, "random").double()
    lines_sim = SparseInteractionMLP(3, n, "lines").double()
    order = random_sim.mixers[0].order
    for token in [(4, 2), (0, 8), (7, 7)]:
        changed = changed_tokens(random_sim, n, *token)
        # the lines through the token's shuffled position k, mapped back to where those tokens sit
        k = int((order == token[0] * n + token[1]).nonzero())
        expected = torch.zeros(n * n, dtype=torch.bool)
        expected[order[line_mask(n, k // n, k % n, band=0, diagonals=True).flatten()]] = True
        assert torch.equal(changed.flatten(), expected)
        assert not torch.equal(changed, line_mask(n, *token, band=0, diagonals=True))
    assert sum(p.numel() for p in random_sim.parameters()) == sum(p.numel() for p in lines_sim.parameters())


def test_sim_parameter_counts_follow_the_pattern():
    n, c = 8, 4
    counts = {p: sum(q.numel() for q in SparseInteractionMLP(c, n, p, band=1).mixers.parameters())
              for p in ("lines", "axial", "wide", "dense")}
    assert counts == {"lines": 4 * (n * n + n), "axial": 2 * (n * n + n),
                      "wide": 4 * (3 * n * n + n), "dense": n**4 + n * n}
    assert SparseInteractionMLP(c, n, "lines").fuse.in_features == 5 * c


@pytest.mark.parametrize("size", [(12, 20), (6, 20), (4, 4)])
def test_sim_resamples_when_map_differs_from_grid(size):
    sim = SparseInteractionMLP(4, 8, "lines")
    x = torch.randn(2, 4, *size, requires_grad=True)
    y = sim(x)
    assert y.shape == x.shape
    y.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in sim.parameters())


def test_resize_averages_when_shrinking():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    assert torch.equal(resize(x, (2, 2)), torch.tensor([[[[2.5, 4.5], [10.5, 12.5]]]]))
    assert resize(x, (2, 8)).shape == (1, 1, 2, 8)
    assert resize(x, (4, 4)) is x


def test_runs_under_bfloat16_autocast():
    net = SideNetwork(small_cfg(), D, 4, 32, [8, 16, 32])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(*inputs(batch=1))
    assert all(torch.isfinite(v.float()).all() for v in out.values())


def test_pure_transformer_has_no_conv_but_the_stem():
    pure = SideNetwork(small_cfg(hybrid=False), D, 4, 32, [8, 16, 32])
    convs = [name for name, m in pure.named_modules() if isinstance(m, nn.Conv2d)]
    assert convs == ["stem.0"]
    assert tuple(pure(*inputs(batch=1))["p8"].shape) == (1, 32, H // 8, W // 8)
    hybrid = SideNetwork(small_cfg(), D, 4, 32, [8, 16, 32])
    depthwise = [m for m in hybrid.modules() if isinstance(m, nn.Conv2d) and m.groups == 16]
    assert len(depthwise) == 7 + 2  # one per block (4 tap + 3 stage blocks) and per downsampler


@pytest.mark.parametrize("overrides", [{}, {"fusion": False, "gates": False, "hybrid": False},
                                       {"depth_per_tap": 0, "ladder_merge": True, "sim_project_first": True,
                                        "attention_window": 2}])
def test_every_parameter_gets_a_gradient(overrides):
    net = SideNetwork(small_cfg(**overrides), D, 4, 32, [8, 16, 32])
    out = net(*inputs())
    sum(v.square().mean() for v in out.values()).backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_fusion_weights_are_normalised_and_no_fusion_uses_last_stage():
    fusion = MultiScaleFusion(8, 4, [4, 8, 16], [8, 16, 32])
    w = fusion.weights()
    assert w.shape == (3, 3) and torch.allclose(w.sum(1), torch.ones(3), atol=1e-3)
    net = SideNetwork(small_cfg(fusion=False), D, 4, 32, [8, 16, 32])
    assert len(net.fusion.projs) == 1 and net.fusion.in_strides == [16]


def test_grad_checkpointing_matches():
    cfg = small_cfg()
    ref = SideNetwork(cfg, D, 4, 32, [8, 16, 32])
    ckpt = SideNetwork(dataclasses.replace(cfg, grad_checkpointing=True), D, 4, 32, [8, 16, 32])
    ckpt.load_state_dict(ref.state_dict())
    images, taps = inputs()
    outs = []
    for net in (ref, ckpt):
        out = net(images, taps)
        sum(v.square().mean() for v in out.values()).backward()
        outs.append(out)
    for key in outs[0]:
        assert torch.allclose(outs[0][key], outs[1][key], atol=1e-6)
    for (name, p), q in zip(ref.named_parameters(), ckpt.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-6), name


def test_width_rounding():
    assert side_width(SideConfig(), 1024) == 256
    assert side_width(SideConfig(num_heads=6), 1000) == 240  # lcm(8, 6) = 24
    assert side_width(SideConfig(width=40), 1024) == 40


def test_paper_scale_budget_and_split():
    net = SideNetwork(SideConfig(), 1024, 6, 128, [8, 16, 32])
    split = net.stage_parameter_split()
    total = sum(p.numel() for p in net.parameters())
    assert total <= 3.2e6  # leaves ~0.8 M for the heads within ~4 M (1.3 % of 304 M)
    share = {k: 100 * v / sum(split.values()) for k, v in split.items()}
    for stage, paper in {"s4": 59.1, "s8": 29.7, "s16": 11.2}.items():
        assert abs(share[stage] - paper) < 2.0, share


# ---- pruning initialisation -------------------------------------------------

STREAM = [1, 3, 4, 6]  # channels kept by construction (D_small = 8, C = 4)
ATTN = [0, 2, 5, 7]
HIDDEN = [0, 3, 5, 8, 9, 11, 12, 15]  # 8 of 16 backbone hidden units


def synthetic_block(i: int, d: int = 8, hidden: int = 16) -> dict[str, torch.Tensor]:
    """Weights whose large rows (scale 100 vs 1) are STREAM / ATTN / HIDDEN; values depend on i."""
    g = torch.Generator().manual_seed(i)

    def rows(n: int, cols: int, keep: list[int]) -> torch.Tensor:
        scale = torch.ones(n)
        scale[keep] = 100.0
        return scale[:, None] * (1 + torch.rand(n, cols, generator=g))

    return {
        "q": rows(d, d, ATTN), "k": rows(d, d, ATTN), "v": rows(d, d, ATTN),
        "proj": rows(d, d, STREAM), "fc1": rows(hidden, d, HIDDEN), "fc2": rows(d, hidden, STREAM),
        "norm1": torch.rand(d, generator=g), "norm2": torch.rand(d, generator=g),
    }


def test_prune_init_copies_expected_slices():
    cfg = SideConfig(width=4, num_heads=2, stage_taps=[2, 1, 1], stage_depths=[1, 1, 0], depth_per_tap=1, sim_grid=8)
    net = SideNetwork(cfg, 8, 4, 8, [8, 16, 32])
    tap_blocks = [3, 7, 11, 15]
    prune_init_(net, synthetic_block, tap_blocks)
    s, a, h = torch.tensor(STREAM), torch.tensor(ATTN), torch.tensor(HIDDEN)
    pairs = net.blocks_with_taps()
    assert [t for _, t in pairs] == [0, 1, 1, 2, 2, 3]
    for block, tap in pairs:
        w = synthetic_block(tap_blocks[tap])
        assert torch.equal(block.mlp.fc1.weight, w["fc1"][h][:, s])
        assert torch.equal(block.mlp.fc2.weight, w["fc2"][s][:, h])
        assert torch.equal(block.norm2.weight, w["norm2"][s])
        assert not block.mlp.fc1.bias.any() and not block.mlp.fc2.bias.any()
        if isinstance(block.mixer, Attention):
            qkv = torch.cat([w[k][a][:, s] for k in ("q", "k", "v")])
            assert torch.equal(block.mixer.qkv.weight, qkv)
            assert torch.equal(block.mixer.proj.weight, w["proj"][s][:, a])
            assert torch.equal(block.norm1.weight, w["norm1"][s])
        else:  # SIM block: its token mixer and norm1 keep their init
            assert torch.equal(block.norm1.weight, torch.ones(4))
    out = net(torch.randn(1, 3, 64, 64), [torch.randn(1, 8, 4, 4) for _ in range(4)])
    assert all(torch.isfinite(v).all() for v in out.values())


def test_importance_changes_the_selection():
    w = synthetic_block(0)
    imp = {k: torch.ones_like(v) for k, v in w.items()}
    imp["fc1"][HIDDEN] = 0.0  # data says the large hidden units do not matter
    idx = select_indices(w, 4, 8, imp)
    assert sorted(set(idx["hidden"].tolist()) & set(HIDDEN)) == []
    assert idx["stream"].tolist() == STREAM


def test_prune_init_rejects_a_too_wide_side():
    net = SideNetwork(SideConfig(width=16, num_heads=2, stage_taps=[2, 1, 1], sim_grid=8), 8, 4, 8, [8, 16, 32])
    with pytest.raises(ValueError, match="wider than the backbone"):
        prune_init_(net, synthetic_block, [0, 1, 2, 3])


def _seeded_net(**kw) -> SideNetwork:
    torch.manual_seed(0)
    return SideNetwork(small_cfg(**kw), D, 4, 32, [8, 16, 32])


@pytest.mark.parametrize("switches", [dict(ladder_merge=True), dict(sim_project_first=True),
                                      dict(ladder_merge=True, sim_project_first=True, gates=False),
                                      dict(attention_window=64)])
def test_same_function_switches_give_the_same_outputs_and_weights(switches):
    """ladder_merge and sim_project_first compute the same function from the same weights
    (and a window covering the whole map is global attention)."""
    kw = dict(depth_per_tap=0, sim_grid=4, gates=switches.pop("gates", True))
    base, fast = _seeded_net(**kw), _seeded_net(**kw, **switches)
    assert list(base.state_dict()) == list(fast.state_dict())
    fast.load_state_dict(base.state_dict())
    images, taps = inputs()
    with torch.no_grad():
        want, got = base(images, taps), fast(images, taps)
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=1e-5, atol=1e-5)


def test_window_attention_attends_within_windows_on_any_map_size():
    from effowt.side.blocks import WindowAttention

    torch.manual_seed(0)
    attn = WindowAttention(16, 2, window=4)
    x = torch.randn(1, 16, 10, 7)  # neither side a multiple of the window
    assert attn(x).shape == x.shape
    y = x.clone()
    y[..., 9, 6] += 1.0  # a token in the last (padded) window
    changed = (attn(y) - attn(x)).abs().sum(dim=1)[0] > 1e-6
    assert changed[8:, 4:].any() and not changed[:8].any() and not changed[:, :4].any()


def test_inference_switches_are_checked():
    with pytest.raises(ConfigError, match="ladder_merge"):
        _seeded_net(ladder_merge=True, depth_per_tap=1)
    with pytest.raises(ConfigError, match="attention_window"):
        _seeded_net(attention_window=-1)
