"""The runtime module (effowt.distributed): one device rule, launcher and rank from the environment."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from effowt.distributed import (
    env_local_rank,
    env_rank,
    env_world_size,
    launched,
    local_device,
    process_group,
    resolve_device,
)
from effowt.errors import ConfigError

RENDEZVOUS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@pytest.fixture
def no_launcher(monkeypatch):
    for name in RENDEZVOUS:
        monkeypatch.delenv(name, raising=False)


def test_a_plain_process_is_rank_0_of_one(no_launcher) -> None:
    assert (launched(), env_rank(), env_world_size(), env_local_rank()) == (False, 0, 1, 0)
    with process_group("gloo", world_of_one=True) as (rank, world):
        assert (rank, world) == (0, 1) and not torch.distributed.is_initialized()


def test_environment_variables_are_read_and_checked(no_launcher, monkeypatch) -> None:
    for name, value in {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "MASTER_ADDR": "h",
                        "MASTER_PORT": "1"}.items():
        monkeypatch.setenv(name, value)
    assert (launched(), env_rank(), env_world_size(), env_local_rank()) == (True, 3, 4, 1)
    monkeypatch.setenv("RANK", "three")
    with pytest.raises(ConfigError, match="RANK='three' is not an integer"):
        env_rank()


def test_a_world_size_without_a_launcher_is_an_error(no_launcher, monkeypatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="start the processes with torchrun"), process_group("gloo"):
        pass


@pytest.mark.parametrize("name, words", [("bogus", "not a torch device"), ("meta", "not supported"),
                                         ("cuda:99", "cuda:99")])
def test_one_device_rule_names_what_is_wrong(name, words) -> None:
    with pytest.raises(ConfigError, match=words):
        resolve_device(name)


def test_default_device_and_local_device(no_launcher, monkeypatch) -> None:
    assert resolve_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu") == local_device("cpu")
    if torch.cuda.is_available():
        assert local_device("cuda") == torch.device("cuda", 0)
        monkeypatch.setenv("LOCAL_RANK", "0")
        for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
            monkeypatch.setenv(name, "1")
        assert local_device("cuda:0") == torch.device("cuda", 0)


def test_tracking_and_evaluation_do_not_load_training() -> None:
    code = ("import sys, effowt.tracking.pipeline, effowt.evaluation.owta, effowt.commands.track; "
            "print(sorted(m for m in sys.modules if m.startswith('effowt.training') or m == 'effowt.data.coco'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
