"""Parameter accounting and the ``effowt params`` command."""

from __future__ import annotations

import json

from effowt.backbones.weights import random_init_expected
from effowt.cli import main
from effowt.config import load_config
from effowt.models import build_model, count_parameters, parameter_report


def test_params_json_has_every_mode_and_the_side_split(capsys) -> None:
    assert main(["params", "--config", "mini", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    for mode in ("side", "head", "full", "lora"):
        assert set(report[mode]) == {"total", "trainable", "trainable_pct_of_full"}
        assert 0 < report[mode]["trainable"] <= report[mode]["total"]
    assert report["full"]["trainable_pct_of_full"] == 100.0
    assert report["side"]["trainable"] < report["full"]["trainable"]
    assert set(report["side_split_pct"]) == {"s4", "s8", "s16"}
    assert abs(sum(report["side_split_pct"].values()) - 100.0) < 0.5
    assert report["heads"]["total"] == report["heads"]["detection"] + report["heads"]["reid"]


def test_meta_device_counts_equal_real_build() -> None:
    cfg = load_config("mini").model
    with random_init_expected():
        real = {mode: count_parameters(build_model(load_config("mini", [f"model.mode={mode}"]).model))
                for mode in ("side", "lora")}
    report = parameter_report(cfg, ("side", "lora"))
    for mode, counts in real.items():
        assert report[mode]["total"] == counts["total"] and report[mode]["trainable"] == counts["trainable"]
    assert "full" not in report and "side_split_pct" in report


def test_params_table_and_overrides(capsys) -> None:
    assert main(["params", "--config", "mini", "--mode", "head", "model.head.channels=64"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[2:]] == ["head", "heads:"]


def test_params_bad_override_is_one_line_error(capsys) -> None:
    assert main(["params", "--config", "mini", "model.mode.nope=1"]) == 2
    assert "effowt params: error:" in capsys.readouterr().err
