"""Benchmarks: output shapes and the checks they make before any work (no timing asserts)."""

import json

import pytest

from effowt.bench.ablation import VARIANTS, resolve_variants, summarise, trainable_parameters
from effowt.bench.world import world_config
from effowt.cli import main
from effowt.data.miniowt import generate_miniowt


def test_efficiency_writes_modes_and_ratios(tmp_path):
    out = tmp_path / "eff"
    assert main(["bench", "efficiency", "--config", "mini", "--modes", "side,full", "--image-size", "64",
                 "--batch", "1", "--steps", "1", "--warmup", "0", "--out", str(out)]) == 0
    report = json.loads((out / "efficiency.json").read_text())
    side, full = report["modes"]["side"], report["modes"]["full"]
    for mode in (side, full):
        assert {"trainable", "total", "peak_mem_bytes", "step_s"} <= set(mode)
        assert mode["peak_mem_bytes"] > 0 and mode["step_s"] > 0
    assert side["trainable"] < full["trainable"] == full["total"]
    assert report["ratios"]["trainable_side_over_full"] == pytest.approx(side["trainable"] / full["trainable"])
    assert report["setup"]["image_size"] == 64 and report["setup"]["batch"] == 1
    assert "| side |" in (out / "efficiency.md").read_text()


def test_efficiency_rejects_unknown_mode(tmp_path, capsys):
    assert main(["bench", "efficiency", "--config", "mini", "--modes", "side,everything"]) == 2
    assert "unknown mode" in capsys.readouterr().err


def test_speed_json_splits_stages(tmp_path):
    path = tmp_path / "speed.json"
    assert main(["bench", "speed", "--config", "mini", "--image-size", "64", "--frames", "2", "--warmup", "1",
                 "--json", str(path)]) == 0
    report = json.loads(path.read_text())
    ms = report["per_frame_ms"]
    assert set(ms) == {"backbone", "side", "heads", "association"}
    assert all(v > 0 for v in ms.values())
    overhead = (ms["side"] + ms["heads"] + ms["association"]) / ms["backbone"]
    assert report["overhead_over_backbone"] == pytest.approx(overhead)


def test_unknown_variant_or_override_fails_before_training(tmp_path, capsys):
    assert main(["bench", "ablation", "--variants", "default,r3", "--out", str(tmp_path / "a")]) == 2
    assert "unknown variant" in capsys.readouterr().err
    assert main(["bench", "ablation", "--variants", "default", "--out", str(tmp_path / "b"), "model.side.nope=1"]) == 2
    assert "unknown key" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_every_variant_resolves_and_pure_transformer_matches_budget():
    base = world_config(10, 0)
    variants = resolve_variants(list(VARIANTS), base)
    default = trainable_parameters(base)
    pure_cfg, pure_overrides = variants["pure_transformer"]
    assert pure_cfg.model.side.hybrid is False
    assert any(o.startswith("model.side.width=") for o in pure_overrides)
    assert abs(trainable_parameters(pure_cfg) - default) <= 0.05 * default
    assert trainable_parameters(variants["r2"][0]) > default > trainable_parameters(variants["r8"][0])


def test_summarise_mean_and_std():
    results = [{"trainable": 5, "train_s": t, "known": {k: v for k in ("OWTA", "DetRe", "AssA")},
                "unknown": {k: 2 * v for k in ("OWTA", "DetRe", "AssA")}} for t, v in ((1.0, 0.2), (3.0, 0.4))]
    s = summarise(["model.side.reduction=2"], [0, 1], results)
    assert s["overrides"] == {"model.side.reduction": "2"}
    assert s["known"]["OWTA"]["mean"] == pytest.approx(0.3)
    assert s["unknown"]["OWTA"]["std"] == pytest.approx(0.2 * 2 ** 0.5)
    assert s["train_s"] == pytest.approx(2.0) and s["seeds"] == [0, 1]


def test_ablation_end_to_end_on_a_tiny_world(tmp_path):
    world = tmp_path / "world"
    generate_miniowt(world, seed=3, size=128, train_images=8, pretrain_images=0, val_videos=1, frames=4)
    out = tmp_path / "ablation"
    args = ["bench", "ablation", "--data", str(world), "--variants", "default,r8", "--seeds", "1", "--budget", "2",
            "--out", str(out), "train.batch_size=2", "model.head.score_thresh=0", "tracker.det_thresh=0",
            "tracker.init_thresh=0"]
    assert main(args) == 0
    report = json.loads((out / "ablation.json").read_text())
    assert set(report["variants"]) == {"default", "r8"}
    for v in report["variants"].values():
        assert v["seeds"] == [0]
        for split in ("known", "unknown"):
            assert set(v[split]) == {"OWTA", "DetRe", "AssA"}
            assert 0.0 <= v[split]["OWTA"]["mean"] <= 1.0 and v[split]["OWTA"]["std"] == 0.0
    assert (out / "ablation.png").stat().st_size > 0
    finished = (out / "runs" / "default" / "seed0" / "result.json").stat().st_mtime_ns
    assert main(args) == 0  # resumes: finished (variant, seed) results are kept, not re-run
    assert (out / "runs" / "default" / "seed0" / "result.json").stat().st_mtime_ns == finished
