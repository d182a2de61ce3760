"""``effowt bench ablation``: the paper's design questions, with error bars.

Every variant is the benchmark world's side-mode preset (``--world``: MiniOWT or a
cut-out split) plus named overrides, trained on the same train split with the same
step budget, tracked and scored on the same test world, once per seed; with
``--curve-points N`` also at N steps along training (the long-training curves).
Results per (variant, seed) live in their own folder
and are never re-run once finished, so an interrupted benchmark resumes.

``pure_transformer`` removes every convolution but the patchify stem. Its patch
merging costs more parameters than the depthwise downsamplers, so its side width
is chosen (multiples of 8, counted on the meta device) to bring its trainable
parameters within 5 % of ``default``'s: the nearest width wins and the chosen
width is recorded in the variant's ``overrides``.
"""

from __future__ import annotations

import json
import logging
import statistics
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from effowt.config import EffOWTConfig, apply_overrides, to_dict
from effowt.errors import ConfigError
from effowt.fileio import atomic_write_json
from effowt_paper.bench_worlds import (
    BENCH_WORLDS,
    add_experiment_arguments,
    curve_steps,
    describe_world,
    ensure_world,
    world_config,
)
from effowt_paper.experiment import Evaluation, run_experiment_in_subprocess, run_side_by_side, threads_per_job

if TYPE_CHECKING:
    import argparse

OUTPUTS = ("ablation.json", "ablation.md", "ablation.png")
logger = logging.getLogger(__name__)
PARAM_MATCH_TOLERANCE = 0.05

VARIANTS: dict[str, list[str]] = {
    "default": [],
    "r2": ["model.side.reduction=2"],
    "r8": ["model.side.reduction=8"],
    "sim_none": ["model.side.sim_stages=[]"],
    "sim_s8": ["model.side.sim_stages=[s8]"],
    "sim_s16": ["model.side.sim_stages=[s16]"],
    "sim_all": ["model.side.sim_stages=[s4, s8, s16]"],
    "sim_axial": ["model.side.sim_pattern=axial"],
    "mlp_dense": ["model.side.sim_pattern=dense"],
    "pure_transformer": ["model.side.hybrid=false"],
    "no_gate": ["model.side.gates=false"],
    "no_fusion": ["model.side.fusion=false"],
    "random_init": ["model.side.init=random"],
    "sim_s16_wide": ["model.side.sim_stages=[s16]", "model.side.sim_pattern=wide"],
    "sim_random": ["model.side.sim_pattern=random"],
    # inference-cost switches (docs/benchmarks/speed.md, "Where the time goes"); the first two compute the same
    # function as default (a check, not a question), the next two change it
    "ladder_merge": ["model.side.ladder_merge=true"],
    "sim_project_first": ["model.side.sim_project_first=true"],
    "attn_window4": ["model.side.attention_window=4"],
    "sim_grid_half": ["model.side.sim_grid=16"],
    "fast_side": ["model.side.ladder_merge=true", "model.side.sim_project_first=true",
                  "model.side.attention_window=4", "model.side.sim_grid=16"],
    # training cost: the frozen backbone in bfloat16 (docs/benchmarks/efficiency.md, "Where a MiniOWT training
    # step goes")
    "bf16_backbone": ["model.backbone.dtype=bfloat16"],
    # not a side-network variant: the full fine-tuning baseline of the long-training curves (issue 23, item 4),
    # at the backbone multiplier the cut-out far tuning chose (benchmarks/cutout-far/accuracy.json)
    "full": ["model.mode=full", "train.backbone_lr_mult=0.1"],
}
# The claim-by-claim set re-run at the tuned recipe (`--variants` default).
CORE_VARIANTS = ["default", "no_gate", "pure_transformer", "sim_none", "sim_random", "no_fusion", "random_init",
                 "r2", "r8"]
# The cut-out world's set (issue 23, item 4): the core claims without random_init (a CNN has no blocks
# to prune from, so the preset already starts random) plus the seed paper's SIM placement study
# (default: SIM at 1/4 only).
CUTOUT_VARIANTS = [n for n in CORE_VARIANTS if n != "random_init"] + ["sim_s8", "sim_s16", "sim_all"]
PARAM_MATCHED = {"pure_transformer"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_experiment_arguments(parser, "benchmarks/ablation", budget=1000)
    parser.add_argument("--variants", default=None,
                        help="comma-separated names (default: the claim-by-claim set; 'all': every variant)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per variant")
    parser.add_argument("--curve-points", type=int, default=1,
                        help="score the test world at N evenly spaced steps (the last: the budget), for curves "
                             "along training (default: %(default)s, the end only)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    default = CORE_VARIANTS if args.world == "mini" else CUTOUT_VARIANTS
    chosen = list(VARIANTS) if args.variants == "all" else names(args.variants) if args.variants else default
    return run_ablation(args.out, names=chosen, seeds=args.seeds, budget=args.budget, data=args.data,
                        device=args.device, workers=args.workers, overrides=args.overrides, jobs=args.jobs,
                        world=args.world, threads=args.threads, curve_points=args.curve_points)


def trainable_parameters(cfg: EffOWTConfig) -> int:
    """Trainable parameters of ``cfg.model`` (built on the meta device: instant)."""
    from effowt.models.params import build_for_counting, count_parameters

    return count_parameters(build_for_counting(cfg.model, cfg.model.mode))["trainable"]


def match_width(cfg: EffOWTConfig, target: int) -> tuple[EffOWTConfig, int]:
    """The side width (multiple of 8) whose trainable count is nearest ``target``."""
    embed_dim_guess = max(8, 8 * round(target ** 0.5 / 8))
    best: tuple[int, int] | None = None
    for width in range(8, 4 * embed_dim_guess + 8, 8):
        count = trainable_parameters(apply_overrides(cfg, [f"model.side.width={width}"]))
        if best is None or abs(count - target) < abs(best[1] - target):
            best = (width, count)
        if count > target:
            break
    assert best is not None
    return apply_overrides(cfg, [f"model.side.width={best[0]}"]), best[0]


def _as_width(override: str, base: EffOWTConfig) -> str:
    """A ``model.side.reduction=r`` override for a preset that sets its side width
    explicitly (the cut-out world's CNN, whose taps differ in width): the width that
    ratio implies, ``width * reduction / r`` (r2 doubles the width, r8 halves it)."""
    key, _, value = override.partition("=")
    side = base.model.side
    if key != "model.side.reduction" or side.width is None:
        return override
    return f"model.side.width={max(8, round(side.width * side.reduction / float(value)))}"


def resolve_variants(names: list[str], base: EffOWTConfig) -> dict[str, tuple[EffOWTConfig, list[str]]]:
    """Config and effective overrides of each named variant; unknown names or keys
    fail here, before any training."""
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise ConfigError(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
    resolved = {}
    default_count = trainable_parameters(base)
    for name in names:
        overrides = [_as_width(o, base) for o in VARIANTS[name]]
        if name == "random_init" and base.model.side.init == "random":
            raise ConfigError("variant random_init: the preset's side network already starts random "
                              "(a CNN backbone has no blocks to prune from); leave it out")
        cfg = apply_overrides(base, overrides)
        if name in PARAM_MATCHED:
            cfg, width = match_width(cfg, default_count)
            overrides.append(f"model.side.width={width}")
            count = trainable_parameters(cfg)
            if abs(count - default_count) > PARAM_MATCH_TOLERANCE * default_count:
                raise ConfigError(f"variant {name}: no side width brings {count:,} trainable parameters "
                                  f"within 5 % of default's {default_count:,}")
        resolved[name] = (cfg, overrides)
    return resolved


def run_ablation(out_dir: str | Path, *, names: list[str], seeds: int, budget: int, data: str | Path | None = None,
                 device: str = "cpu", workers: int = 1, overrides: list[str] | tuple[str, ...] = (),
                 jobs: int = 1, world: str = "mini", threads: int | None = None,
                 curve_points: int = 1) -> dict[str, Any]:
    """Run every (variant, seed) not yet finished, ``jobs`` side by side (each on
    ``cpu_count // jobs`` threads; what is computed does not depend on it), rewriting
    ``ablation.json/.md/.png`` as each run finishes (a stopped benchmark keeps a
    summary of what it finished). ``curve_points > 1`` also scores each run at that
    many evenly spaced steps (from weight snapshots) and adds ``curves.png``."""
    check_counts(("--seeds", seeds, 1))
    if curve_points < 1 or budget % curve_points:
        raise ConfigError(f"--curve-points must be >= 1 and divide --budget {budget}, got {curve_points}")
    steps = curve_steps(budget, curve_points)
    threads = threads_per_job(jobs, threads)
    out = Path(out_dir)
    bench = BENCH_WORLDS[world]
    base = world_config(budget, 0, overrides, bench.preset)
    if len(steps) > 1:
        base = apply_overrides(base, [f"train.snapshot_every={steps[0]}"])
    variants = resolve_variants(names, base)
    paths = ensure_world(out / "world", data, bench.settings, generate=bench.generate)
    evaluation = Evaluation("test", paths.val_json, steps)
    report: dict[str, Any] = {
        "setup": {"bench_world": world, "world": describe_world(paths), "budget_steps": budget, "seeds": seeds,
                  "device": device, "backbone": base.model.backbone.name, "overrides": list(overrides),
                  "variants": list(variants),
                  **({"curve_steps": list(steps)} if len(steps) > 1 else {})},
        "variants": {},
    }
    _claim_folder(out / "ablation.json", {**report, "config": to_dict(base)})
    logger.info("[ablation] %d variants x %d seeds: %s", len(variants), seeds, ", ".join(variants))
    finished: dict[str, dict[int, dict[str, Any]]] = {name: {} for name in variants}
    lock = threading.Lock()

    def record(name: str, seed: int, result: dict[str, Any]) -> dict[str, Any]:
        """Keep a finished run and rewrite the reports over every run finished so far."""
        with lock:
            finished[name][seed] = {**result, **result["scores"]["test"][str(budget)]}
            report["variants"] = {
                n: summarise(variants[n][1], sorted(runs), [runs[k] for k in sorted(runs)], steps)
                for n, runs in finished.items() if runs
            }
            figures = {OUTPUTS[2]: plot_ablation(report)}
            if len(steps) > 1:
                figures["curves.png"] = plot_curves(report)
            write_outputs(out / OUTPUTS[0], {**report, "config": to_dict(base)}, markdown(report), figures)
            scores = finished[name][seed]
            logger.info("[ablation] %s seed %d: known OWTA %.1f, unknown OWTA %.1f (%d of %d runs done)", name, seed,
                        100 * scores["known"]["OWTA"], 100 * scores["unknown"]["OWTA"],
                        sum(map(len, finished.values())), len(variants) * seeds)
        return result

    # seed-major in one queue: a stopped run has every variant at (nearly) equal seeds,
    # and no core waits for the last variant of a seed
    run_side_by_side([
        lambda name=name, seed=seed: record(name, seed, run_experiment_in_subprocess(
            apply_overrides(variants[name][0], [f"train.seed={seed}"]), paths, out / "runs" / name / f"seed{seed}",
            [evaluation], device=device, workers=workers, threads=threads))
        for seed in range(seeds) for name in variants
    ], jobs)
    return report


# What a (variant, seed) folder's result depends on besides the variant and the seed.
SETUP_KEYS = ("world", "budget_steps", "backbone", "overrides", "curve_steps")



def _claim_folder(path: Path, report: dict[str, Any]) -> None:
    """Runs in ``path``'s folder are named by variant and seed only: refuse to resume
    them under another budget, world or override set (they would be taken as this
    one's). A new folder records its setup in ``path`` at once; an existing
    ``path`` is left as it is until new results replace it."""
    if not path.is_file():
        atomic_write_json(path, report)
        return
    previous = json.loads(path.read_text())["setup"]
    changed = [k for k in SETUP_KEYS if previous.get(k) != report["setup"].get(k)]
    if changed:
        raise ConfigError(f"{path}: its runs were made with another {', '.join(changed)} "
                          f"({', '.join(f'{k}={previous.get(k)}' for k in changed)}); choose another --out")


def summarise(overrides: list[str], seeds: list[int], results: list[dict[str, Any]],
              steps: tuple[int, ...] = ()) -> dict[str, Any]:
    """Mean and sample standard deviation over seeds (std 0 for a single seed); with
    more than one of ``steps``, the OWTA curve along training too."""

    summary: dict[str, Any] = {
        "overrides": {o.split("=", 1)[0]: o.split("=", 1)[1] for o in overrides},
        "trainable": results[0]["trainable"],
        "seeds": seeds,
        "train_s": statistics.fmean(r["train_s"] for r in results),
    }
    for split in ("known", "unknown"):
        summary[split] = {k: mean_std([r[split][k] for r in results]) for k in METRICS}
    if len(steps) > 1:
        summary["curve"] = [
            {"step": step, **{split: mean_std([r["scores"]["test"][str(step)][split]["OWTA"] for r in results])
                              for split in ("known", "unknown")}}
            for step in steps
        ]
    return summary


def _seeds_done(report: dict[str, Any]) -> str:
    """``"N seeds"``: seeds finished by every variant asked for, and the number asked
    for when fewer (a stopped run; a variant without a finished run counts 0)."""
    done = min(len(report["variants"].get(n, {"seeds": []})["seeds"]) for n in report["setup"]["variants"])
    asked = report["setup"]["seeds"]
    return ("1 seed" if asked == 1 else f"{asked} seeds") if done == asked else f"{done} of {asked} seeds"


def markdown(report: dict[str, Any]) -> str:
    """One row per variant with its finished seeds: mean ± std (%) of OWTA / D.Re /
    A.Acc, known and unknown (the mean alone for a variant with one seed)."""
    s = report["setup"]
    rows = [
        [name, str(len(v["seeds"])),
         *[percent(v[split][k], len(v["seeds"]) > 1) for split in ("known", "unknown") for k in METRICS],
         f"{v['trainable']:,}", f"{v['train_s']:.0f}"]
        for name, v in report["variants"].items()
    ]
    header = ["variant", "seeds", *[f"{split} {name}" for split in ("known", "unknown") for name in METRIC_LABELS],
              "trainable", "train (s)"]
    title = (f"# Ablations on {_world_name(s)} ({s['backbone']}, {s['budget_steps']} steps, "
             f"{_seeds_done(report)}, {s['device']})")
    lines = [title, "", *markdown_table(header, rows), *_against_default(report)]
    if "curve_steps" in s:
        curve_rows = [[name, *[f"{100 * p['known']['mean']:.1f} / {percent(p['unknown'], len(v['seeds']) > 1)}"
                               for p in v["curve"]]]
                      for name, v in report["variants"].items()]
        lines += ["", "OWTA along training (test world, known / unknown ± std, %):", "",
                  *markdown_table(["variant", *[f"step {step}" for step in s["curve_steps"]]], curve_rows)]
    return "\n".join(lines) + "\n"


def _against_default(report: dict[str, Any]) -> list[str]:
    """Each variant's OWTA minus ``default``'s (points) with the two standard deviations
    together; ``shown`` only where the difference exceeds them. A variant or a default
    with one seed has no spread, and nothing is shown for it."""
    variants = report["variants"]
    if "default" not in variants or len(variants) < 2:
        return []
    base = variants["default"]

    def cell(v: dict[str, Any], split: str) -> str:
        diff, spread, shown = difference(v[split]["OWTA"], base[split]["OWTA"])
        if min(len(v["seeds"]), len(base["seeds"])) < 2:
            return f"{100 * diff:+.1f} (1 seed)"
        return f"{100 * diff:+.1f} (spread {100 * spread:.1f}{', shown' if shown else ''})"

    rows = [[name, cell(v, "known"), cell(v, "unknown")] for name, v in variants.items() if name != "default"]
    return ["", "Against `default` (OWTA points; shown only where the difference exceeds the two standard "
                "deviations together):", "",
            *markdown_table(["variant", "known OWTA - default", "unknown OWTA - default"], rows)]


def _world_name(setup: dict[str, Any]) -> str:
    return BENCH_WORLDS[setup.get("bench_world", "mini")].title


def plot_ablation(report: dict[str, Any]) -> Any:
    """Unknown-category OWTA per variant, mean with a standard-deviation error bar."""
    names = list(report["variants"])
    means = [100 * report["variants"][n]["unknown"]["OWTA"]["mean"] for n in names]
    stds = [100 * report["variants"][n]["unknown"]["OWTA"]["std"] for n in names]
    fig, ax = new_figure(max(5, 0.6 * len(names) + 2), 3.5)
    colours = ["tab:orange" if n == "default" else "tab:blue" for n in names]
    ax.bar(range(len(names)), means, yerr=stds, capsize=3, color=colours)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_ylabel("unknown OWTA (%)")
    ax.set_title(f"{_world_name(report['setup'])}\nablations ({_seeds_done(report)}, mean ± std)")
    return fig


def plot_curves(report: dict[str, Any]) -> Any:
    """Unknown-category OWTA along training per variant, mean with a ± std band."""
    fig, ax = new_figure(6, 3.5)
    for name, v in report["variants"].items():
        steps = [p["step"] for p in v["curve"]]
        mean = [100 * p["unknown"]["mean"] for p in v["curve"]]
        std = [100 * p["unknown"]["std"] for p in v["curve"]]
        ax.plot(steps, mean, marker="o", label=name)
        ax.fill_between(steps, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)], alpha=0.2)
    ax.set_xlabel("training step")
    ax.set_ylabel("unknown OWTA (%)")
    ax.set_title(f"{_world_name(report['setup'])}\nunknown OWTA along training ({_seeds_done(report)})")
    ax.legend()
    return fig
