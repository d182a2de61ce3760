"""The command line answers before it imports torch: help, argument, path, config and lock errors.

Asserted by what was imported, not by timing (timings live in docs/architecture.md)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from effowt.cli import COMMANDS
from effowt.commands.bench import BENCHMARKS
from effowt.lockfile import folder_lock

PROBE = ("import json, sys\n"
         "from effowt.cli import main\n"
         "try:\n"
         "    rc = main(json.loads(sys.argv[1]))\n"
         "except SystemExit as e:\n"
         "    rc = e.code\n"
         "heavy = sorted(m for m in json.loads(sys.argv[2]) if m in sys.modules)\n"
         "print(json.dumps({'rc': rc, 'heavy': heavy}), file=sys.stderr)\n")


# Modules a command must not import before it answers; help also answers without numpy.
HEAVY = ("torch", "effowt.training", "effowt.data.coco")
HELP_HEAVY = (*HEAVY, "numpy")


def run_cli(argv: list[str], heavy: tuple[str, ...] = HEAVY) -> tuple[dict, str]:
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argv), json.dumps(heavy)], capture_output=True,
                          text=True, timeout=120)
    *lines, last = proc.stderr.strip().splitlines()
    return json.loads(last), "\n".join(lines)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_imports_no_torch(command) -> None:
    result, _ = run_cli([command, "--help"], HELP_HEAVY)
    assert result == {"rc": 0, "heavy": []}


@pytest.mark.parametrize("bench", sorted(BENCHMARKS))
def test_bench_help_and_argument_errors_import_no_torch(bench) -> None:
    assert run_cli(["bench", bench, "--help"], HELP_HEAVY)[0] == {"rc": 0, "heavy": []}
    result, err = run_cli(["bench", bench, "--threads", "0"])
    assert result == {"rc": 2, "heavy": []} and "--threads: must be >= 1" in err


def test_only_the_bench_table_names_the_paper_experiments() -> None:
    src = Path(__file__).parents[1] / "src" / "effowt"
    uses = re.compile(r'(from|import) effowt_paper|"effowt_paper\.')  # an import, or a module named in a table
    naming = [p.relative_to(src).as_posix() for p in src.rglob("*.py") if uses.search(p.read_text())]
    assert naming == ["commands/bench.py"]


@pytest.mark.parametrize("extra, words", [
    (["--source", "/nonexistent.mp4"], "/nonexistent.mp4: no such file or folder"),
    (["tracker.bogus=1"], "unknown key 'tracker.bogus'"),
    (["--prompt", "no slot"], "exactly one {}"),
    (["--texts", " ; "], "names no text"),
    (["tracker.max_dets=5"], "set the cap with --max-dets 5"),  # one way per setting
])
def test_track_argument_errors_come_before_torch(extra, words, tmp_path) -> None:
    argv = ["track", "--source", str(tmp_path), "--out", str(tmp_path / "out"), *extra]
    result, err = run_cli(argv)
    assert result == {"rc": 2, "heavy": []}
    assert err.count("\n") == 0 and err.startswith("effowt track: error: ") and words in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command, option, value", [
    ("track", "--stream-timeout", "inf"),  # would wait forever on a silent stream
    ("track", "--duration", "nan"), ("track", "--duration", "0"), ("track", "--stream-timeout", "-1"),
    ("pretrain-lit", "--lr", "nan"), ("pretrain-vlm", "--lr", "0"),  # these trained on before
])
def test_seconds_and_rates_must_be_finite_and_positive(command, option, value, tmp_path) -> None:
    required = {"track": ["--source", "http://127.0.0.1:9/x.ts"], "pretrain-lit": [],
                "pretrain-vlm": ["--data", str(tmp_path)]}[command]
    result, err = run_cli([command, *required, "--out", str(tmp_path / "out"), option, value])
    assert result == {"rc": 2, "heavy": []}
    expected = f"effowt {command}: error: argument {option}: must be a finite number > 0, got {value}"
    assert err.splitlines()[-1] == expected
    assert not (tmp_path / "out").exists()


def test_a_held_folder_is_refused_before_torch(tmp_path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with folder_lock(out):  # this process is the run that holds the folder
        result, err = run_cli(["track", "--source", str(tmp_path), "--out", str(out)])
    assert result == {"rc": 2, "heavy": []}
    assert "in use by another effowt run" in err and err.count("\n") == 0


def test_params_config_error_comes_before_torch() -> None:
    result, err = run_cli(["params", "--config", "mini", "model.bogus=1"])
    assert result == {"rc": 2, "heavy": []} and "model.bogus" in err


def test_train_into_a_held_folder_is_refused_before_torch(tmp_path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    with folder_lock(out):
        result, err = run_cli(["train", "--config", "mini", "--data", str(tmp_path / "a.json"),
                               "--images", str(tmp_path), "--out", str(out)])
    assert result == {"rc": 2, "heavy": []} and "in use by another effowt run" in err
