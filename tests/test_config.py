"""Config loading: presets, YAML files, overrides, strictness."""

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import effowt
from effowt.config import EffOWTConfig, load_config, preset_names, save_config
from effowt.errors import ConfigError
from effowt.models import build_model

SRC = str(Path(effowt.__file__).resolve().parents[1])


def test_presets_load_and_differ():
    names = preset_names()
    assert {"paper", "clip-b16", "mini", "miniowt"} <= set(names)
    paper, mini = load_config("paper"), load_config("mini")
    assert paper.model.backbone.name == "timm:eva02_large_patch14_clip_224"
    assert mini.model.backbone.name != paper.model.backbone.name
    assert sum(paper.model.side.stage_taps) == len(paper.model.backbone.taps)


def test_overrides_apply_and_parse_types():
    cfg = load_config("mini", ["train.lr=1e-3", "model.side.sim_stages=[s4, s8]", "model.side.gates=false"])
    assert cfg.train.lr == pytest.approx(1e-3)
    assert cfg.model.side.sim_stages == ["s4", "s8"]
    assert cfg.model.side.gates is False
    assert load_config("mini").train.lr != cfg.train.lr  # the preset itself is untouched


@pytest.mark.parametrize("override, fragment", [
    ("train.lrr=0.1", "unknown key 'train.lrr'"),
    ("model.nothing.x=1", "unknown key"),
    ("train.lr", "not of the form key=value"),
    ("train.max_steps=ten", "train.max_steps must be int"),
    ("train.lr=fast", "train.lr must be float"),
    ("model.side.gates=[1]", "model.side.gates must be bool"),
])
def test_bad_overrides_are_errors(override, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("[", r"\[").replace(".", r"\.")):
        load_config("mini", [override])


def test_unknown_key_in_yaml_names_file_and_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model:\n  side:\n    reduktion: 2\n")
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    assert str(path) in str(err.value) and "model.side.reduktion" in str(err.value)


def test_unknown_preset_lists_presets():
    with pytest.raises(ConfigError, match="presets: .*mini"):
        load_config("no-such-preset")


def test_save_and_reload_round_trip(tmp_path):
    cfg = load_config("paper", ["model.side.reduction=8"])
    save_config(cfg, tmp_path / "config.yaml")
    assert load_config(str(tmp_path / "config.yaml")) == cfg
    assert isinstance(cfg, EffOWTConfig)


@pytest.mark.parametrize("override, fragment", [
    ("model.side.init=prunee", "model.side.init: unknown value 'prunee' (valid: prune, random)"),
    ("tracker.det_thresh=1.5", "tracker.det_thresh=1.5: out of range, must be in [0, 1]"),
    ("model.image_size=256", "data.image_size=128: must equal model.image_size=256"),
    ("model.head.strides=[8, 12]", "model.head.strides=[8, 12]: must be non-empty, strictly increasing powers of two"),
])
def test_bad_values_fail_when_loaded_naming_key_value_and_range(override, fragment):
    with pytest.raises(ConfigError) as err:
        load_config("mini", [override])
    assert fragment in str(err.value)


def test_dataclass_changes_are_checked_where_they_are_made():
    cfg = load_config("mini")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.tracker.det_thresh = 1.5  # type: ignore[misc]
    with pytest.raises(ConfigError, match=r"tracker\.det_thresh=1\.5"):
        dataclasses.replace(cfg.tracker, det_thresh=1.5)
    with pytest.raises(ConfigError, match=r"model\.side\.init"):
        build_model(dataclasses.replace(cfg.model, side=dataclasses.replace(cfg.model.side, init="prunee")))


@pytest.mark.parametrize("override, key", [("model.side.init=prunee", "model.side.init"),
                                           ("tracker.det_thresh=1.5", "tracker.det_thresh")])
def test_train_cli_rejects_bad_values_at_once_without_writing(tmp_path, override, key):
    """`effowt train` with a bad value: exit 2 within seconds, one line naming the key,
    no traceback, no run folder (the check runs before the heavy imports)."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "effowt", "train", "--config", "mini", "--data", str(tmp_path / "a.json"),
           "--images", str(tmp_path), "--out", str(out), override]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": SRC})
    assert time.perf_counter() - start < 5.0
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("effowt train: error: ") and key in lines[0]
    assert "Traceback" not in proc.stderr and not out.exists()
