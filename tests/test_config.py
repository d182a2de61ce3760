"""Config loading: presets, YAML files, overrides, strictness."""

import pytest

from effowt.config import EffOWTConfig, load_config, preset_names, save_config
from effowt.errors import ConfigError


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
