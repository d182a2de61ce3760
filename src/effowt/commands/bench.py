"""``effowt bench <benchmark>``: benchmarks with JSON + Markdown output.

Each benchmark is a module registered in :data:`BENCHMARKS`, as the commands are in
:data:`effowt.cli.COMMANDS`: ``add_arguments(parser)``, ``run(args) -> report`` and
``markdown(report) -> str`` (printed), plus ``OUTPUTS``, the files it writes into
``--out`` (listed after the table), when it has one. A benchmark without ``--out``
takes ``--json FILE``; every file goes through :func:`effowt.bench.output.write_outputs`.
Only the chosen benchmark's module is imported, and it imports nothing heavy at
module level (``effowt bench ... --help`` and argument errors come before torch). The paper's experiments live in
:mod:`effowt_paper` (see docs/architecture.md).
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from typing import Any

from effowt.commands import int_at_least

# benchmark -> (module, one-line help)
BENCHMARKS: dict[str, tuple[str, str]] = {
    "efficiency": ("effowt.bench.efficiency", "trainable params, peak training memory, step time per mode"),
    "speed": ("effowt.bench.speed", "per-frame inference time: backbone, side, heads, association"),
    "step": ("effowt.bench.step_phases",
             "where one training step's time goes (data, backbone, neck, heads, backward, optimizer)"),
    "probe": ("effowt_paper.probe", "linear objectness probe of the frozen backbone's taps: known vs unknown"),
    "forgetting": ("effowt_paper.forgetting", "zero-shot accuracy of the VLM with each run's trained image tower"),
    "tracker": ("effowt.bench.tracker_sweep",
                "sweep the tracker's thresholds on a validation world: OWTA / D.Re / A.Acc"),
    "accuracy": ("effowt_paper.accuracy", "train, track and score side/head/full/lora on MiniOWT"),
    "ablation": ("effowt_paper.ablation", "the paper's design questions on MiniOWT, with seeds"),
}


def _module(name: str) -> Any:
    return importlib.import_module(BENCHMARKS[name][0])


class _Benchmarks(argparse._SubParsersAction):
    """The benchmarks as sub-commands whose arguments are added when one is chosen, so
    that ``effowt bench NAME ...`` imports NAME's module only."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        if values[0] in BENCHMARKS:
            _add_benchmark_arguments(values[0], self._name_parser_map[values[0]])
        super().__call__(parser, namespace, values, option_string)


def _add_benchmark_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """The module's own options, then ``--json`` (without ``--out``), ``--threads``, ``--quiet``."""
    from effowt.cli import add_quiet

    _module(name).add_arguments(parser)
    if "--out" not in parser._option_string_actions:
        parser.add_argument("--json", default=None, help="write the report to this JSON file")
    per_job = "--jobs" in parser._option_string_actions  # experiments side by side set their own threads
    parser.add_argument("--threads", type=int_at_least(1), default=None,
                        help="torch CPU threads per process (default: the cores this process may use"
                             + (", divided among --jobs)" if per_job else ")"))
    add_quiet(parser)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bench", required=True, action=_Benchmarks)
    for name, (_, help_text) in BENCHMARKS.items():
        sub.add_parser(name, help=help_text, formatter_class=parser.formatter_class)


def run(args: argparse.Namespace) -> int:
    from effowt.bench.output import write_outputs

    module = _module(args.bench)
    if "jobs" not in vars(args):
        from effowt.threads import set_threads

        set_threads(args.threads)
    report = module.run(args)
    print(module.markdown(report))
    if getattr(args, "json", None):
        write_outputs(args.json, report)
    outputs = getattr(module, "OUTPUTS", ())
    if outputs and args.out:
        print(f"wrote {Path(args.out) / outputs[0]}, {', '.join(outputs[1:])}")
    return 0
