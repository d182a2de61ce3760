"""The ``effowt`` command line: ``effowt <command> [args]``.

Each command lives in ``effowt.commands.<module>`` with two functions,
``add_arguments(parser)`` and ``run(args) -> int``; it is imported only when
invoked, so ``effowt --help`` stays fast. Errors derived from
:class:`effowt.errors.EffOWTError` print as one line and exit with status 2.
SIGINT (Ctrl-C) and SIGTERM stop a command with one line (what was kept and how
to continue, when the command says so) and exit 130 / 143 (128 + the signal).
Warnings print as one line each, ``effowt <command>: warning: ...``. Every command
takes ``--quiet`` (no progress; see :mod:`effowt.progress`) and its help shows
each option's default.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import signal
import sys
import threading
import warnings
from collections.abc import Iterator

from effowt import __version__
from effowt.errors import EffOWTError, Interrupted

# command name -> (module under effowt.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "params": ("params", "count total and trainable parameters per transfer mode"),
    "synth": ("synth", "generate the MiniOWT synthetic open-world tracking world"),
    "pretrain-vlm": ("pretrain_vlm", "pretrain the tiny CLIP-style VLM on MiniOWT"),
    "pretrain-lit": ("pretrain_lit", "make the LiT VLM: text tower for the ImageNet MobileNetV2, cut-out world"),
    "train": ("train", "train a transfer mode on COCO-format data"),
    "track": ("track", "track a video, frame folder or TAO split"),
    "eval": ("evaluate", "score tracks with TrackEval's TAO_OW OWTA / D.Re / A.Acc"),
    "bench": ("bench", "efficiency, speed, accuracy and ablation benchmarks"),
    "report": ("report", "write OUT/report.html: videos, track timelines, crops and metrics of a track output"),
    "demo": ("demo", "track and score a held-out MiniOWT clip with the shipped checkpoint"),
}


def _top_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="effowt",
        description="Open-world tracking with a side network beside a frozen VLM (EffOWT).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="commands:\n" + "\n".join(f"  {n:<14}{h}" for n, (_, h) in COMMANDS.items()),
    )
    parser.add_argument("--version", action="version", version=f"effowt {__version__}")
    parser.add_argument("command", choices=sorted(COMMANDS), metavar="command")
    return parser


LOGGED_PACKAGES = ("effowt", "effowt_paper")


def configure_logging() -> None:
    """Show the ``logging`` messages of effowt and of the paper's experiments beside it
    (progress of benchmarks, streams) on stderr, one plain line each; other libraries'
    loggers are left as they are, except that the root logger gets a warnings-only
    handler when it has none, so that a library's ``logging.info(...)`` (open_clip's)
    cannot install the default one that would print effowt's lines a second time."""
    for package in LOGGED_PACKAGES:
        logger = logging.getLogger(package)
        if not logger.handlers:
            handler = _StderrHandler()
            handler.setFormatter(logging.Formatter("%(message)s"))
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(_StderrHandler(logging.WARNING))


class _StderrHandler(logging.StreamHandler):
    """A handler writing to whatever ``sys.stderr`` is when a record comes (tests swap it)."""

    def __init__(self, level: int = logging.NOTSET) -> None:
        super().__init__()
        self.setLevel(level)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``effowt`` console script; tests call it with a list."""
    configure_logging()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        _top_parser().parse_args(argv or ["--help"])
        return 2
    name, rest = argv[0], argv[1:]
    module_name, help_text = COMMANDS[name]
    module = importlib.import_module(f"effowt.commands.{module_name}")
    parser = argparse.ArgumentParser(prog=f"effowt {name}", description=help_text,
                                     formatter_class=DefaultsHelpFormatter)
    module.add_arguments(parser)
    add_quiet(parser)
    args = parser.parse_args(rest)
    from effowt.progress import set_quiet

    set_quiet(args.quiet)
    with one_line_warnings(f"effowt {name}"), _signals_interrupt():
        try:
            return int(module.run(args) or 0)
        except EffOWTError as err:
            print(f"effowt {name}: error: {err}", file=sys.stderr)
            return 2
        except KeyboardInterrupt as err:
            signum = getattr(err, "signum", signal.SIGINT)
            detail = f": {err}" if str(err) else ""
            print(f"effowt {name}: interrupted by {signal.Signals(signum).name}{detail}", file=sys.stderr)
            return 128 + signum


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Help that ends each option's text with ``(default: X)``, unless the text already
    says its default or there is none to show (None, False, an empty list)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if ("default" in text or not action.option_strings or action.default is argparse.SUPPRESS
                or action.default is None or action.default is False or action.default == []):
            return action.help
        return f"{text} (default: %(default)s)".lstrip()


def add_quiet(parser: argparse.ArgumentParser) -> None:
    """``--quiet``, last, on every command and every sub-command of ``bench`` (which adds
    it to the one sub-command chosen, :mod:`effowt.commands.bench`)."""
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bars or progress lines (they show only when stderr is a terminal anyway)")


def _raise_interrupted(signum: int, frame: object) -> None:
    raise Interrupted(signum)


@contextlib.contextmanager
def _signals_interrupt() -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`Interrupted` while a command runs (main thread only)."""
    handled = (signal.SIGINT, signal.SIGTERM)
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _raise_interrupted) for s in handled}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def one_line_warnings(prefix: str) -> Iterator[None]:
    """Format warnings as ``<prefix>: warning: <message>`` (no source line); recording
    (``pytest.warns``, ``catch_warnings(record=True)``) is unaffected."""
    def one_line(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 line: str | None = None) -> str:
        return f"{prefix}: warning: {message}\n"

    previous = warnings.formatwarning
    warnings.formatwarning = one_line
    try:
        yield
    finally:
        warnings.formatwarning = previous


if __name__ == "__main__":
    sys.exit(main())
