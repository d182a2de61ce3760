"""``effowt bench accuracy --world mini``: the four transfer modes, tuned on equal terms.

The protocol (issue: "EffOWT must earn its claim")::

    for each mode (side, head, full, lora):
        tuning: the first --trials points of the mode's grid (same count for every mode),
                each trained once (seed 0) on the test world's train/ split and scored on
                the VALIDATION world's videos at 25/50/75/100 % of the budget
        chosen: the trial with the best validation score (mean of known and unknown OWTA
                at the end of training)
        final:  the chosen setting trained with seeds 0..S-1 (seed 0 is the chosen trial's
                own run) and scored on the TEST world's videos: mean and std over seeds

The validation world is another ``effowt synth`` seed than the test world: nothing
in tuning reads the test videos. Grids (the world's
:attr:`~effowt_paper.bench_worlds.BenchWorld.grids`) vary the learning rate over 10x
and one structural switch per mode; ``--grid [MODE:]KEY=V1,V2`` replaces or adds an
axis. Trials and seeds live in folders keyed by a hash of their resolved
config, so a finished one is never re-run and a changed recipe is never mistaken
for a finished one.

Output: ``accuracy.json``, ``accuracy.md`` (results, tuning table), ``accuracy.png``
(OWTA with error bars) and ``curves.png`` (validation OWTA against steps per trial).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import statistics
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from effowt.bench import check_counts, names
from effowt.bench.output import (
    METRIC_LABELS,
    METRICS,
    difference,
    markdown_table,
    mean_std,
    new_figure,
    percent,
    write_outputs,
)
from effowt.config import TRANSFER_MODES, EffOWTConfig, apply_overrides, to_dict
from effowt.errors import ConfigError
from effowt_paper.bench_worlds import (
    BENCH_WORLDS,
    MINI_GRIDS,
    Grids,
    add_experiment_arguments,
    curve_steps,
    describe_world,
    ensure_world,
    world_config,
)
from effowt_paper.experiment import Evaluation, run_experiment_in_subprocess, run_side_by_side, threads_per_job

if TYPE_CHECKING:
    import argparse

OUTPUTS = ("accuracy.json", "accuracy.md", "accuracy.png")
logger = logging.getLogger(__name__)
CURVE_POINTS = 4  # validation scores at 25 / 50 / 75 / 100 % of the budget
# Config fields that change neither training nor scores (how often to log / checkpoint).
_BOOKKEEPING = ("log_every", "checkpoint_every", "checkpoint_every_s")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_experiment_arguments(parser, "benchmarks/accuracy", budget=1500)
    parser.add_argument("--modes", default="side,head,full,lora")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 of each mode's chosen setting (test world)")
    parser.add_argument("--trials", type=int, default=6, help="tuning trials per mode (the first N points of its grid)")
    parser.add_argument("--grid", action="append", default=[], metavar="[MODE:]KEY=V1,V2",
                        help="replace or add a tuning axis (repeatable; without MODE: every mode)")
    parser.add_argument("--val-data", default=None,
                        help="an existing `effowt synth` folder for the validation world "
                             "(default: generate OUT/val-world)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    return run_accuracy(args.out, modes=names(args.modes), budget=args.budget, seeds=args.seeds, trials=args.trials,
                        grid=args.grid, data=args.data, val_data=args.val_data, device=args.device,
                        workers=args.workers, overrides=args.overrides, jobs=args.jobs, world=args.world,
                        threads=args.threads)


def parse_grid(items: list[str], modes: list[str],
               base: Grids = MINI_GRIDS) -> Grids:
    """Each mode's grid (from ``base``) after ``[MODE:]KEY=V1,V2,...`` items (values parsed
    as YAML); an item without a mode applies to every mode. ConfigError for an empty value
    list, an unknown mode or a key the config does not have."""
    grids = {m: dict(base[m]) for m in modes}
    for item in items:
        target, _, spec = item.rpartition(":") if ":" in item.split("=", 1)[0] else ("", "", item)
        key, sep, raw = spec.partition("=")
        values = [_parse_value(v) for v in raw.split(",") if v.strip()]
        if not sep or not key.strip() or not values:
            raise ConfigError(f"--grid {item!r}: expected [MODE:]KEY=V1,V2,... with at least one value")
        if target and target not in TRANSFER_MODES:
            raise ConfigError(f"--grid {item!r}: unknown mode {target!r} (valid: {', '.join(TRANSFER_MODES)})")
        for mode in [target] if target else modes:
            if mode in grids:
                grids[mode][key.strip()] = values
    return grids


def _parse_value(text: str) -> Any:
    """A grid value as YAML, with ``1e-3`` read as a float (YAML 1.1 reads it as a string)."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every point of ``grid`` as ``{key: value}``, the last axis varying fastest."""
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def _overrides(point: dict[str, Any]) -> list[str]:
    return [f"{k}={json.dumps(v) if isinstance(v, str) else v}" for k, v in point.items()]


def config_key(cfg: EffOWTConfig) -> str:
    """12 hex digits of the sha256 of the resolved config's fields that the run's result
    depends on: a run's folder name. Left out: log and checkpoint intervals, and the
    sections the mode does not build (``model.side`` outside ``side``, ``model.pyramid``
    in ``side``, ``model.lora`` outside ``lora``), so a new setting of another mode
    does not rename finished runs."""
    fields = to_dict(cfg)
    for key in _BOOKKEEPING:
        fields["train"].pop(key)
    model = fields["model"]
    for key, used in (("side", cfg.model.mode == "side"), ("pyramid", cfg.model.mode != "side"),
                      ("lora", cfg.model.mode == "lora")):
        if not used:
            model.pop(key)
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]


def _selection_score(metrics: dict[str, Any]) -> float:
    return 0.5 * (metrics["known"]["OWTA"] + metrics["unknown"]["OWTA"])


def resolve_trials(modes: list[str], budget: int, trials: int, grid_items: list[str],
                   overrides: list[str], world: str = "mini",
                   ) -> dict[str, list[tuple[dict[str, Any], EffOWTConfig]]]:
    """Every mode's trials ``(point, config)`` on ``world`` (its preset and grids); all
    errors surface here, before training."""
    unknown = [m for m in modes if m not in TRANSFER_MODES]
    if unknown:
        raise ConfigError(f"unknown mode(s) {unknown}; choose from {list(TRANSFER_MODES)}")
    check_counts(("--trials", trials, 1))
    if budget < CURVE_POINTS or budget % CURVE_POINTS:
        raise ConfigError(f"--budget must be a positive multiple of {CURVE_POINTS} "
                          f"(validation curve points at 25/50/75/100 %), got {budget}")
    base = world_config(budget, 0, overrides, BENCH_WORLDS[world].preset)
    snapshot = f"train.snapshot_every={budget // CURVE_POINTS}"
    resolved: dict[str, list[tuple[dict[str, Any], EffOWTConfig]]] = {}
    for mode, grid in parse_grid(grid_items, modes, BENCH_WORLDS[world].grids).items():
        points = grid_points(grid)
        if len(points) < trials:
            raise ConfigError(f"mode {mode}: its grid has {len(points)} points, fewer than --trials {trials}")
        resolved[mode] = [
            (point, apply_overrides(base, [f"model.mode={mode}", snapshot, *_overrides(point)]))
            for point in points[:trials]
        ]
    return resolved


def run_accuracy(out_dir: str | Path, *, modes: list[str], budget: int, seeds: int = 3, trials: int = 6,
                 grid: list[str] = (), data: str | Path | None = None, val_data: str | Path | None = None,
                 device: str = "cpu", workers: int = 1, overrides: list[str] = (), jobs: int = 1,
                 world: str = "mini", threads: int | None = None) -> dict[str, Any]:
    """Tune every mode on ``world``'s validation world, then train its chosen setting with
    ``seeds`` seeds and score it on the test world (see the module docstring).
    ``jobs`` experiments run side by side, each on ``cpu_count // jobs`` threads
    (what is computed does not depend on it)."""
    check_counts(("--seeds", seeds, 1))
    threads = threads_per_job(jobs, threads)
    bench = BENCH_WORLDS[world]
    resolved = resolve_trials(modes, budget, trials, list(grid), list(overrides), world)
    out = Path(out_dir)
    test_world = ensure_world(out / "world", data, bench.settings, generate=bench.generate)
    val_world = ensure_world(out / "val-world", val_data, bench.validation_settings, needs_train=False,
                             generate=bench.generate)
    steps = curve_steps(budget, CURVE_POINTS)
    validation = Evaluation("validation", val_world.val_json, steps)
    test = Evaluation("test", test_world.val_json, (budget,))
    report: dict[str, Any] = {
        "protocol": {
            "validation_seed": describe_world(val_world, needs_train=False)["synth_seed"],
            "test_seed": describe_world(test_world)["synth_seed"],
            "budget": budget,
            "trials_per_mode": trials,
            "seeds": seeds,
            "selection": "validation world, mean of known and unknown OWTA at the end of training",
            "curve_steps": list(steps),
        },
        "worlds": {"test": describe_world(test_world), "validation": describe_world(val_world, needs_train=False)},
        "setup": {"world": world, "backbone": world_config(budget, 0, overrides, bench.preset).model.backbone.name,
                  "device": device,
                  "overrides": list(overrides), "grid": list(grid)},
        "modes": {},
        "tuning": {},
    }
    if report["protocol"]["validation_seed"] == report["protocol"]["test_seed"]:
        raise ConfigError("the validation world and the test world have the same synth seed: "
                          "tuning would read the test world")
    for mode, mode_trials in resolved.items():
        logger.info("[accuracy] %s: %d trials of %d steps, validation curves", mode, len(mode_trials), budget)
        results = run_side_by_side([
            lambda cfg=cfg, mode=mode: run_experiment_in_subprocess(
                cfg, test_world, out / "trials" / mode / config_key(cfg), [validation], device=device,
                workers=workers, threads=threads)
            for _, cfg in mode_trials
        ], jobs)
        report["tuning"][mode] = [
            {"overrides": point, "key": config_key(cfg), "curve": _curve(result, steps)}
            for (point, cfg), result in zip(mode_trials, results)
        ]
        _write(out, report)
        best = max(range(len(mode_trials)), key=lambda i: report["tuning"][mode][i]["curve"][-1]["score"])
        point, cfg = mode_trials[best]
        logger.info("[accuracy] %s: chosen %s; %d seeds on the test world", mode, point, seeds)
        seeded = [apply_overrides(cfg, [f"train.seed={seed}"]) for seed in range(seeds)]
        finished: dict[int, dict[str, Any]] = {}
        lock = threading.Lock()

        def record(seed: int, result: dict[str, Any], point: dict[str, Any] = point, mode: str = mode,
                   finished: dict[int, dict[str, Any]] = finished, lock: threading.Lock = lock) -> dict[str, Any]:
            with lock:  # a stopped benchmark keeps the summary of the seeds it finished
                finished[seed] = result
                report["modes"][mode] = _summary(point, finished, budget)
                _write(out, report)
            return result

        run_side_by_side([
            lambda seed=seed, c=c, mode=mode: record(seed, run_experiment_in_subprocess(
                c, test_world, out / ("trials" if seed == 0 else "seeds") / mode / config_key(c), [test],
                device=device, workers=workers, threads=threads))
            for seed, c in enumerate(seeded)
        ], jobs)
    report["config"] = to_dict(world_config(budget, 0, overrides, bench.preset))
    _write(out, report)
    return report


def _curve(result: dict[str, Any], steps: tuple[int, ...]) -> list[dict[str, Any]]:
    scores = result["scores"]["validation"]
    return [
        {"step": s, "known": scores[str(s)]["known"]["OWTA"], "unknown": scores[str(s)]["unknown"]["OWTA"],
         "score": _selection_score(scores[str(s)])}
        for s in steps
    ]


def _summary(point: dict[str, Any], finished: dict[int, dict[str, Any]], budget: int) -> dict[str, Any]:
    """Mean and std over the finished seeds (``{seed: result}``) of a mode's chosen setting."""
    runs = [finished[seed] for seed in sorted(finished)]
    tests = [r["scores"]["test"][str(budget)] for r in runs]
    summary: dict[str, Any] = {"chosen": point, "seeds": sorted(finished)}
    for split in ("known", "unknown"):
        summary[split] = {k: mean_std([t[split][k] for t in tests]) for k in METRICS}
    summary["trainable"] = runs[0]["trainable"]
    summary["train_s"] = statistics.fmean(r["train_s"] for r in runs)
    return summary


def _write(out: Path, report: dict[str, Any]) -> None:
    figures = {"accuracy.png": plot_accuracy(report)} if report["modes"] else {}
    write_outputs(out / OUTPUTS[0], report, markdown(report), {**figures, "curves.png": plot_curves(report)})


def claims(report: dict[str, Any]) -> list[str]:
    """The world's target comparisons (:attr:`~effowt_paper.bench_worlds.BenchWorld.targets`)
    on the test means, each marked shown only when the difference exceeds the two
    standard deviations together."""
    modes = report["modes"]
    lines = []
    for split, a, b, margin in BENCH_WORLDS[report["setup"].get("world", "mini")].targets:
        if a not in modes or b not in modes:
            continue
        diff, spread, shown = difference(modes[a][split]["OWTA"], modes[b][split]["OWTA"])
        target = f"{a} {split} OWTA >= {b}" + (f" + {100 * margin:.0f}" if margin else "")
        met = "met" if diff >= margin else "NOT met"
        verdict = "shown (difference exceeds the spread)" if shown else "within the spread"
        lines.append(f"- {target}: {met} ({100 * diff:+.1f} points; spread {100 * spread:.1f}: {verdict})")
    return lines


def _world_title(report: dict[str, Any]) -> str:
    return BENCH_WORLDS[report["setup"].get("world", "mini")].title


def markdown(report: dict[str, Any]) -> str:
    """Results table (test world, mean ± std over seeds), the targets, the tuning table."""
    p = report["protocol"]
    metric_columns = [f"{split} {name}" for split in ("known", "unknown") for name in METRIC_LABELS]
    header = ["mode", "chosen", "seeds", *metric_columns, "trainable", "train (s)"]
    rows = [
        [mode, ", ".join(f"{k}={v}" for k, v in m["chosen"].items()), str(len(m["seeds"])),
         *[percent(m[split][k]) for split in ("known", "unknown") for k in METRICS], f"{m['trainable']:,}",
         f"{m['train_s']:.0f}"]
        for mode, m in report["modes"].items()
    ]
    lines = [
        f"# Transfer modes on {_world_title(report)} ({report['setup']['backbone']}, {p['budget']} steps, "
        f"{p['trials_per_mode']} trials per mode, {p['seeds']} seeds, {report['setup']['device']})",
        "",
        f"Tuned on the validation world (synth seed {p['validation_seed']}), reported on the test world "
        f"(synth seed {p['test_seed']}); selection: {p['selection']}.",
        "",
        *markdown_table(header, rows),
    ]
    if claims(report):
        lines += ["", "Targets (test world):", *claims(report)]
    tuning_header = ["mode", "trial", *[f"OWTA known / unknown @ {s}" for s in p["curve_steps"]], "score"]
    tuning_rows = [
        [mode, ", ".join(f"{k}={v}" for k, v in row["overrides"].items()),
         *[f"{100 * c['known']:.1f} / {100 * c['unknown']:.1f}" for c in row["curve"]],
         f"{100 * row['curve'][-1]['score']:.1f}"]
        for mode, rows_ in report["tuning"].items() for row in rows_
    ]
    lines += ["", "## Tuning (validation world, seed 0)", "", *markdown_table(tuning_header, tuning_rows)]
    return "\n".join(lines) + "\n"


def plot_accuracy(report: dict[str, Any]) -> Any:
    """Grouped bars: test-world OWTA (mean, std error bar) for known and unknown per mode."""
    modes = list(report["modes"])
    fig, ax = new_figure(6, 3.5)
    width = 0.38
    for offset, split in ((-width / 2, "known"), (width / 2, "unknown")):
        stats = [report["modes"][m][split]["OWTA"] for m in modes]
        bars = ax.bar([i + offset for i in range(len(modes))], [100 * s["mean"] for s in stats], width,
                      yerr=[100 * s["std"] for s in stats], capsize=3, label=split)
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.set_xticks(range(len(modes)), modes)
    ax.set_ylabel("OWTA (%), mean ± std over seeds")
    p = report["protocol"]
    ax.set_title(f"{_world_title(report)}: test world, {p['budget']} steps, {p['seeds']} seeds")
    ax.legend()
    return fig


def plot_curves(report: dict[str, Any]) -> Any:
    """Validation unknown OWTA against training steps, one line per trial, a panel per mode."""
    modes = list(report["tuning"]) or ["-"]
    fig, _ = new_figure(3.2 * len(modes), 3.2)
    fig.clear()
    for i, mode in enumerate(modes):
        ax = fig.add_subplot(1, len(modes), i + 1)
        for row in report["tuning"].get(mode, []):
            label = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in row["overrides"].items())
            ax.plot([c["step"] for c in row["curve"]], [100 * c["unknown"] for c in row["curve"]], marker="o",
                    label=label)
        ax.set_title(f"{mode}: validation unknown OWTA")
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    return fig
