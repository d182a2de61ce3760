"""Benchmarks: output shapes and the checks they make before any work (no timing asserts)."""

import json

import numpy as np
import pytest
import torch

from effowt.cli import main
from effowt.config import load_config
from effowt.data.miniowt import generate_miniowt
from effowt_paper.ablation import VARIANTS, resolve_variants, summarise, trainable_parameters
from effowt_paper.bench_worlds import world_config


@pytest.mark.slow
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


@pytest.mark.parametrize("bench, option, value, least", [
    ("efficiency", "--steps", "0", 1), ("efficiency", "--batch", "0", 1), ("efficiency", "--warmup", "-1", 0),
    ("speed", "--frames", "0", 1), ("step", "--steps", "0", 1),
])
def test_counts_below_their_least_fail_before_anything_runs(tmp_path, capsys, bench, option, value, least):
    # efficiency used to start its jobs and fail in them with a traceback, or (--warmup -1) run on
    data = ["--data", str(tmp_path), "--images", str(tmp_path)] if bench == "step" else []
    out = tmp_path / "out"
    write = ["--out", str(out)] if bench == "efficiency" else ["--json", str(out)]
    assert main(["bench", bench, "--config", "mini", *data, option, value, *write]) == 2
    assert capsys.readouterr().err.strip() == f"effowt bench: error: {option} must be >= {least}, got {value}"
    assert not out.exists()


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
    assert set(report["throughput_frames_per_s"]) == {"1"} and "profile" not in report


def test_speed_runs_at_the_configs_own_image_size_by_default(tmp_path):
    path = tmp_path / "speed.json"
    assert main(["bench", "speed", "--config", "mini", "--frames", "1", "--warmup", "0", "--repeats", "1",
                 "--json", str(path), "model.image_size=96", "data.image_size=96"]) == 0
    assert json.loads(path.read_text())["setup"]["image_size"] == 96


def test_speed_profile_parts_add_up_and_batches_are_measured_in_the_same_run(tmp_path, capsys):
    path = tmp_path / "speed.json"
    assert main(["bench", "speed", "--config", "mini", "--image-size", "64", "--frames", "2", "--warmup", "1",
                 "--profile", "--batch-frames", "2", "--repeats", "1", "--json", str(path),
                 "--variant", "global:model.side.attention_window=0",
                 "model.side.ladder_merge=true", "model.side.attention_window=2"]) == 0
    report = json.loads(path.read_text())
    parts = report["profile"]["parts_ms"]
    assert {"stem", "s4 SIM", "s8 attention", "s4 ladders + gates (merged)", "fusion", "FCOS towers",
            "ReID RoIAlign + normalise", "FCOS decode + top-k + NMS"} <= set(parts)
    side = sum(v for k, v in parts.items() if not k.startswith(("FCOS", "ReID")))
    assert side == pytest.approx(report["per_frame_ms"]["side"], rel=0.05)  # medians of sums ~ sums of medians
    assert report["profile"]["by_layer_type_ms"]["SIM"] == parts["s4 SIM"]
    assert 0 < report["profile"]["fcos_candidates_to_nms"] <= 3 * 1000
    assert set(report["throughput_frames_per_s"]) == {"1", "2"}
    assert report["frames_per_s"] == report["throughput_frames_per_s"]["2"]
    assert report["batch_speedup"] == pytest.approx(report["frames_per_s"] / report["throughput_frames_per_s"]["1"])
    assert list(report["variants"]) == ["default", "global"]
    assert report["variants"]["global"]["overrides"] == ["model.side.attention_window=0"]
    assert report["variants"]["default"]["per_frame_ms"] == report["per_frame_ms"]
    assert "s8 attention" in report["variants"]["global"]["profile"]["parts_ms"]
    out = capsys.readouterr().out
    assert "| s4 SIM |" in out and "| global | model.side.attention_window=0 |" in out
    assert main(["bench", "speed", "--config", "mini", "--variant", "no-colon"]) == 2


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


@pytest.mark.slow
def test_ablation_end_to_end_on_a_tiny_world(tmp_path, capsys):
    world = tmp_path / "world"
    generate_miniowt(world, seed=3, size=128, train_images=8, pretrain_images=0, val_videos=1, frames=4)
    out = tmp_path / "ablation"
    args = ["bench", "ablation", "--data", str(world), "--variants", "default,r8", "--seeds", "1", "--budget", "2",
            "--jobs", "2", "--out", str(out), "train.batch_size=2", "model.head.score_thresh=0", "tracker.det_thresh=0",
            "tracker.init_thresh=0"]
    assert main(args) == 0
    report = json.loads((out / "ablation.json").read_text())
    assert set(report["variants"]) == {"default", "r8"}
    progress = [line for line in capsys.readouterr().err.splitlines() if line.startswith("[ablation]")]
    assert progress[0] == "[ablation] 2 variants x 1 seeds: default, r8"  # the paper package's log lines show
    assert sorted(line.split(":")[0] for line in progress[1:]) == ["[ablation] default seed 0", "[ablation] r8 seed 0"]
    assert sorted(line.rsplit("(", 1)[1] for line in progress[1:]) == ["1 of 2 runs done)", "2 of 2 runs done)"]
    for v in report["variants"].values():
        assert v["seeds"] == [0]
        for split in ("known", "unknown"):
            assert set(v[split]) == {"OWTA", "DetRe", "AssA"}
            assert 0.0 <= v[split]["OWTA"]["mean"] <= 1.0 and v[split]["OWTA"]["std"] == 0.0
    assert (out / "ablation.png").stat().st_size > 0
    finished = (out / "runs" / "default" / "seed0" / "result.json").stat().st_mtime_ns
    assert main(args) == 0  # resumes: finished (variant, seed) results are kept, not re-run
    assert (out / "runs" / "default" / "seed0" / "result.json").stat().st_mtime_ns == finished
    longer = [a if a != "2" else "4" for a in args]  # another budget into the same folder
    capsys.readouterr()
    assert main(longer) == 2
    assert "another budget_steps (budget_steps=2)" in capsys.readouterr().err
    assert (out / "runs" / "default" / "seed0" / "result.json").stat().st_mtime_ns == finished


def test_a_stopped_ablation_keeps_a_summary_of_the_runs_it_finished(tmp_path, monkeypatch):
    import effowt_paper.ablation as ablation

    world = tmp_path / "world"
    generate_miniowt(world, seed=3, size=128, train_images=2, pretrain_images=0, val_videos=1, frames=2)
    metrics = {"OWTA": 0.4, "DetRe": 0.5, "AssA": 0.3}

    def fake_experiment(cfg, world, out_dir, evaluations, **kwargs):
        if cfg.model.side.reduction == 8:
            raise KeyboardInterrupt
        return {"trainable": 7, "train_s": 1.0, "scores": {"test": {"2": {"known": metrics, "unknown": metrics}}}}

    monkeypatch.setattr(ablation, "run_experiment_in_subprocess", fake_experiment)
    with pytest.raises(KeyboardInterrupt):
        ablation.run_ablation(tmp_path / "out", names=["default", "r8"], seeds=2, budget=2, data=world)
    report = json.loads((tmp_path / "out" / "ablation.json").read_text())
    assert list(report["variants"]) == ["default"] and report["variants"]["default"]["seeds"] == [0]
    lines = (tmp_path / "out" / "ablation.md").read_text().splitlines()
    assert "0 of 2 seeds" in lines[0]  # r8 has no finished run
    assert lines[-1] == "| default | 1 | 40.0 | 50.0 | 30.0 | 40.0 | 50.0 | 30.0 | 7 | 1 |"  # one seed: no spread shown


def test_ablation_curves_score_evenly_spaced_snapshots(tmp_path, monkeypatch):
    import effowt_paper.ablation as ablation
    from effowt.errors import ConfigError

    world = tmp_path / "world"
    generate_miniowt(world, seed=3, size=128, train_images=2, pretrain_images=0, val_videos=1, frames=2)
    asked = []

    def fake_experiment(cfg, world, out_dir, evaluations, **kwargs):
        asked.append((cfg.train.snapshot_every, cfg.model.mode, evaluations[0].steps))
        seed = cfg.train.seed
        scores = {str(step): {split: {"OWTA": step / 10 + seed / 100, "DetRe": 0.5, "AssA": 0.3}
                              for split in ("known", "unknown")} for step in (2, 4)}
        return {"trainable": 7, "train_s": 1.0, "scores": {"test": scores}}

    monkeypatch.setattr(ablation, "run_experiment_in_subprocess", fake_experiment)
    ablation.run_ablation(tmp_path / "out", names=["default", "full"], seeds=2, budget=4, data=world, curve_points=2)
    assert asked[0] == (2, "side", (2, 4)) and asked[1] == (2, "full", (2, 4))
    report = json.loads((tmp_path / "out" / "ablation.json").read_text())
    assert report["setup"]["curve_steps"] == [2, 4]
    curve = report["variants"]["default"]["curve"]
    assert [p["step"] for p in curve] == [2, 4]
    assert curve[0]["unknown"]["mean"] == pytest.approx(0.205) and curve[1]["known"]["mean"] == pytest.approx(0.405)
    assert (tmp_path / "out" / "curves.png").stat().st_size > 0
    text = (tmp_path / "out" / "ablation.md").read_text()
    assert "| step 2 | step 4 |" in text and "2 seeds" in text.splitlines()[0]
    assert "| default | 20.5 / 20.5 ± 0.7 | 40.5 / 40.5 ± 0.7 |" in text  # known mean / unknown mean ± std
    with pytest.raises(ConfigError, match="--curve-points"):
        ablation.run_ablation(tmp_path / "other", names=["default"], seeds=1, budget=4, data=world, curve_points=3)
    with pytest.raises(ConfigError, match="another curve_steps"):  # the same folder, another evaluation schedule
        ablation.run_ablation(tmp_path / "out", names=["default"], seeds=1, budget=4, data=world)


def test_a_finished_experiment_without_its_weights_is_a_clear_error(tmp_path):
    from effowt.errors import EffOWTError
    from effowt_paper.experiment import _weights_at

    run = tmp_path / "exp" / "run"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("{}")
    with pytest.raises(EffOWTError, match="delete train.json to retrain"):
        _weights_at(run, 4, 4, tmp_path / "exp" / "snapshot")


def test_tuning_grid_points_and_bad_grids():
    from effowt_paper.accuracy import grid_points, parse_grid
    from effowt_paper.bench_worlds import BENCH_WORLDS

    grids = parse_grid(["side:model.side.gate_init=0.5,0.9", "train.lr=1e-3,2e-3"], ["side", "head"])
    assert grids["side"]["model.side.gate_init"] == [0.5, 0.9] and grids["head"]["train.lr"] == [1e-3, 2e-3]
    assert "model.side.gate_init" not in grids["head"]
    points = grid_points({"a": [1, 2], "b": ["x", "y", "z"]})
    assert points[:3] == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 1, "b": "z"}] and len(points) == 6
    for world in BENCH_WORLDS.values():  # the same number of trials for every mode
        assert len({len(grid_points(g)) for g in world.grids.values()}) == 1, world.name


def test_config_key_ignores_bookkeeping_and_unbuilt_sections_only():
    from effowt.config import apply_overrides, load_config
    from effowt_paper.accuracy import config_key

    head = load_config("mini", ["model.mode=head"])
    same = ["train.checkpoint_every_s=5", "train.log_every=3", "model.side.width=64", "model.lora.rank=2"]
    assert config_key(apply_overrides(head, same)) == config_key(head)
    for changed in ("train.lr=0.5", "model.pyramid=linear", "train.seed=1", "tracker.det_thresh=0.2"):
        assert config_key(apply_overrides(head, [changed])) != config_key(head), changed
    side = apply_overrides(head, ["model.mode=side"])
    assert config_key(apply_overrides(side, ["model.pyramid=linear"])) == config_key(side)
    assert config_key(apply_overrides(side, ["model.side.width=64"])) != config_key(side)


@pytest.mark.parametrize("args,message", [
    (["--modes", "side,bogus"], "unknown mode"),
    (["--grid", "train.lr="], "at least one value"),
    (["--grid", "bogus:train.lr=1"], "unknown mode"),
    (["--grid", "model.nope=1,2"], "unknown key"),
    (["model.side.nope=1"], "unknown key"),
    (["--trials", "7"], "fewer than --trials"),
    (["--budget", "10"], "multiple of 4"),
])
def test_accuracy_bad_arguments_fail_before_anything_is_written(tmp_path, capsys, args, message):
    out = tmp_path / "acc"
    assert main(["bench", "accuracy", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()


@pytest.mark.slow
def test_accuracy_protocol_end_to_end_on_tiny_worlds(tmp_path):
    world, val_world = tmp_path / "world", tmp_path / "val"
    generate_miniowt(world, seed=3, size=128, train_images=8, pretrain_images=0, val_videos=1, frames=4)
    generate_miniowt(val_world, seed=4, size=128, train_images=0, pretrain_images=0, val_videos=1, frames=4)
    out = tmp_path / "accuracy"
    args = ["bench", "accuracy", "--data", str(world), "--val-data", str(val_world), "--modes", "side",
            "--budget", "4", "--seeds", "2", "--trials", "2", "--jobs", "2", "--out", str(out), "train.batch_size=2",
            "model.head.score_thresh=0", "model.head.detections_per_img=10", "tracker.det_thresh=0",
            "tracker.init_thresh=0"]
    assert main(args) == 0
    report = json.loads((out / "accuracy.json").read_text())
    assert report["protocol"] == {**report["protocol"], "validation_seed": 4, "test_seed": 3, "budget": 4,
                                  "trials_per_mode": 2, "curve_steps": [1, 2, 3, 4]}
    assert "/" not in json.dumps(report["worlds"])  # worlds by synth settings, never by path
    assert set(report["modes"]) == {"side"}
    for mode, m in report["modes"].items():
        assert m["seeds"] == [0, 1]
        assert m["chosen"] in [t["overrides"] for t in report["tuning"][mode]]
        for split in ("known", "unknown"):
            assert set(m[split]) == {"OWTA", "DetRe", "AssA"}
            assert 0.0 <= m[split]["OWTA"]["mean"] <= 1.0 and m[split]["OWTA"]["std"] >= 0.0
        assert m["trainable"] > 0 and m["train_s"] > 0
        assert len(report["tuning"][mode]) == 2
        assert [c["step"] for c in report["tuning"][mode][0]["curve"]] == [1, 2, 3, 4]
    assert report["tuning"]["side"][0]["overrides"] == {"model.side.output": "residual", "train.lr": 1e-3}
    # the seed averages are the mean and sample std of the per-seed runs' test scores
    seeded = [json.loads(p.read_text())["scores"] for p in sorted(out.glob("*/side/*/result.json"))]
    per_seed = [scores["test"]["4"] for scores in seeded if "test" in scores]
    assert len(per_seed) == 2
    for split in ("known", "unknown"):
        for metric in ("OWTA", "DetRe", "AssA"):
            values = [run[split][metric] for run in per_seed]
            assert report["modes"]["side"][split][metric] == pytest.approx(
                {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1))})
    for name in ("accuracy.md", "accuracy.png", "curves.png"):
        assert (out / name).stat().st_size > 0
    results = sorted(out.glob("*/*/*/result.json"))
    stamps = [r.stat().st_mtime_ns for r in results]
    assert main(args) == 0  # resumes: nothing finished is re-run
    assert [r.stat().st_mtime_ns for r in results] == stamps


def test_step_profile_times_every_phase(tmp_path):
    world = tmp_path / "world"
    generate_miniowt(world, seed=3, size=64, train_images=4, pretrain_images=0, val_videos=0, frames=1)
    out = tmp_path / "step.json"
    assert main(["bench", "step", "--config", "mini", "--data", str(world / "train" / "annotations.json"),
                 "--images", str(world / "train" / "images"), "--steps", "2", "--warmup", "1", "--json", str(out),
                 "train.batch_size=2", "data.image_size=64", "model.image_size=64"]) == 0
    report = json.loads(out.read_text())
    assert list(report["ms"]) == ["data", "backbone", "neck", "heads", "backward", "optimizer"]
    assert all(v >= 0 for v in report["ms"].values()) and report["batch_images"] == 4
    assert report["step_ms"] == pytest.approx(sum(report["ms"].values()), abs=0.5)


def test_roc_auc_exact_values_and_ties():
    from effowt_paper.probe import roc_auc

    scores = torch.tensor([0.1, 0.4, 0.35, 0.8])
    labels = torch.tensor([False, False, True, True])
    assert roc_auc(scores, labels) == pytest.approx(0.75)
    assert roc_auc(torch.tensor([1.0, 1.0]), torch.tensor([True, False])) == pytest.approx(0.5)
    assert roc_auc(-scores, labels) == pytest.approx(0.25)


def test_probe_reports_every_tap_and_the_references(tmp_path):
    from effowt_paper.probe import run_probe

    world = tmp_path / "world"
    generate_miniowt(world, seed=5, size=64, train_images=0, pretrain_images=0, val_videos=2, frames=3)
    report = run_probe(world / "val" / "annotations.json", config="mini", max_frames=3)
    taps = load_config("mini").model.backbone.taps
    assert list(report["probes"]) == ["pixels", *[f"{kind} block {t}" for kind in ("pretrained", "random")
                                                  for t in taps]]
    assert sum(report["tokens"].values()) == 2 * 3 * (64 // 16) ** 2


@pytest.mark.slow
def test_forgetting_reference_side_equals_frozen_and_full_uses_its_trained_tower(tmp_path, capsys):
    from effowt.config import load_config
    from effowt.runs import load_run
    from effowt.tracking.labels import load_clip_model
    from effowt.training.trainer import train
    from effowt_paper.forgetting import run_forgetting, with_run_tower

    world = generate_miniowt(tmp_path / "w", seed=3, size=128, train_images=4, pretrain_images=4, val_videos=0,
                             frames=1)
    runs = {}
    for mode in ("side", "full"):
        cfg = load_config("miniowt", [f"model.mode={mode}", "train.max_steps=1", "train.batch_size=2",
                                      "train.lr=0.1", "train.warmup_steps=0"])
        runs[mode] = str(tmp_path / mode)
        train(cfg, world.train_json, world.train_images, runs[mode], device="cpu")
    report = run_forgetting(world.root, [runs["side"], runs["full"]])
    assert report["runs"][runs["side"]] == {"mode": "side", **report["reference"]}  # a frozen tower is the VLM
    assert report["runs"][runs["full"]]["mode"] == "full" and report["world"]["synth_seed"] == 3
    assert all(0.0 <= v <= 1.0 for split, v in report["runs"][runs["full"]].items() if split != "mode")
    model, cfg = load_run(runs["full"])
    vlm = load_clip_model(cfg.model.backbone)[0]
    own_proj = vlm.visual.proj.clone()
    merged = with_run_tower(vlm, model)
    trained = model.backbone.model.transformer.resblocks[0].attn.in_proj_weight
    assert merged.visual.transformer.resblocks[0].attn.in_proj_weight is trained
    frozen = load_clip_model(cfg.model.backbone)[0].visual.transformer.resblocks[0].attn.in_proj_weight
    assert not torch.equal(trained, frozen)
    assert torch.equal(merged.visual.proj, own_proj)
    assert main(["bench", "forgetting", "--data", str(world.root), "--runs", runs["side"]]) == 0
    assert "frozen VLM (reference)" in capsys.readouterr().out


def test_accuracy_summary_covers_the_finished_seeds_only():
    from effowt_paper.accuracy import _summary

    def run(owta):
        split = {"OWTA": owta, "DetRe": owta, "AssA": owta}
        return {"scores": {"test": {"8": {"known": split, "unknown": split}}}, "trainable": 7, "train_s": owta}

    summary = _summary({"train.lr": 1e-3}, {2: run(0.4), 0: run(0.2)}, 8)
    assert summary["seeds"] == [0, 2]  # seed 1 has not finished: the summary says which seeds it holds
    assert summary["known"]["OWTA"]["mean"] == pytest.approx(0.3)
    assert summary["unknown"]["OWTA"]["std"] == pytest.approx(0.1414, abs=1e-4)


@pytest.mark.parametrize("world,margin", [("mini", ""), ("cutout-far", " + 3")])
def test_accuracy_targets_follow_the_world_and_mark_the_spread(world, margin):
    from effowt_paper.accuracy import claims

    def mode(known, unknown, std):
        return {"known": {"OWTA": {"mean": known, "std": std}}, "unknown": {"OWTA": {"mean": unknown, "std": std}}}

    report = {"setup": {"world": world},
              "modes": {"side": mode(0.40, 0.32, 0.01), "head": mode(0.38, 0.30, 0.02), "full": mode(0.39, 0.31, 0.0)}}
    lines = claims(report)
    assert lines[0].startswith(f"- side unknown OWTA >= full{margin}: ")
    assert ("NOT met" in lines[0]) == (world != "mini")  # +1 point: met at margin 0, not at 3
    assert lines[1] == "- side unknown OWTA >= head + 3: NOT met (+2.0 points; spread 3.0: within the spread)"
    assert lines[2] == "- side known OWTA >= head: met (+2.0 points; spread 3.0: within the spread)"


def test_ablation_report_compares_each_variant_with_default_against_the_spread():
    from effowt_paper.ablation import markdown

    def variant(seeds, known, unknown, std):
        stat = {"mean": 0.3, "std": 0.0}
        return {"seeds": seeds, "trainable": 9, "train_s": 1.0,
                "known": {"OWTA": {"mean": known, "std": std}, "DetRe": stat, "AssA": stat},
                "unknown": {"OWTA": {"mean": unknown, "std": std}, "DetRe": stat, "AssA": stat}}

    report = {"setup": {"budget_steps": 8, "seeds": 3, "backbone": "b", "device": "cpu",
                        "variants": ["default", "no_gate", "r2"]},
              "variants": {"default": variant([0, 1, 2], 0.30, 0.30, 0.01),
                           "no_gate": variant([0, 1, 2], 0.31, 0.25, 0.01),
                           "r2": variant([0], 0.20, 0.20, 0.0)}}
    rows = [line for line in markdown(report).splitlines() if line.startswith(("| no_gate | +", "| r2 | -"))]
    # +1 point inside a 2-point spread is not shown, -5 beyond it is; one seed has no spread at all
    assert rows == ["| no_gate | +1.0 (spread 2.0) | -5.0 (spread 2.0, shown) |",
                    "| r2 | -10.0 (1 seed) | -10.0 (1 seed) |"]


def test_a_benchmark_jobs_warnings_are_one_line_and_its_result_comes_back(capfd):
    from effowt.bench.jobs import run_job

    assert run_job("posixpath:basename", {"p": "runs/seed0"}, "basename job") == "seed0"
    run_job("warnings:warn", {"message": "taking over the stale lock of pid 7"}, "warning job")
    assert capfd.readouterr().err == "effowt bench job: warning: taking over the stale lock of pid 7\n"
