"""Benchmark jobs in fresh Python processes: the one subprocess runner of the benchmarks.

Why a fresh process: PyTorch's allocators (and glibc on CPU) do not hand memory
back, so a job run after another in the same process would inherit its peak
(process RSS on CPU). :func:`run_job` runs ``module:function(**kwargs)`` in a new
interpreter and returns its JSON result; the child's log goes to the console as
it comes.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from effowt.errors import EffOWTError
from effowt.fileio import atomic_write_json


def run_job(target: str, kwargs: dict[str, Any], what: str) -> Any:
    """Call ``target`` (``"package.module:function"``) with the JSON-serialisable
    ``kwargs`` in a fresh process and return what it returned (JSON-serialisable).
    ``EffOWTError`` naming ``what`` when the job fails."""
    with tempfile.TemporaryDirectory(prefix="effowt-job-") as tmp:
        result = Path(tmp) / "result.json"
        proc = subprocess.run(
            [sys.executable, "-m", "effowt.bench.jobs", target, json.dumps(kwargs), str(result)],
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
        if proc.returncode != 0 or not result.is_file():
            raise EffOWTError(f"{what}: benchmark job failed (exit status {proc.returncode}; its output is above)")
        return json.loads(result.read_text())


def main(argv: list[str]) -> None:
    """The child's side: ``python -m effowt.bench.jobs TARGET KWARGS_JSON RESULT_FILE``."""
    target, kwargs, result = argv
    module, _, name = target.partition(":")
    function = getattr(importlib.import_module(module), name)
    atomic_write_json(result, function(**json.loads(kwargs)))


if __name__ == "__main__":
    from effowt.cli import configure_logging, one_line_warnings

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    configure_logging()
    with one_line_warnings("effowt bench job"):
        main(sys.argv[1:])
