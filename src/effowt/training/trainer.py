"""The training loop: two-view COCO data, weighted losses, AdamW, checkpoints.

:func:`train` is what ``effowt train`` (and ``torchrun ... -m effowt train``)
runs: it prepares the run folder, builds the dataset and the model, and hands
them to :class:`Trainer`.

Reproducibility: at the start of every optimizer step the torch, numpy and
python generators are re-seeded from ``(train.seed, step, rank)``; the data order
is a function of ``(seed, epoch)`` and the dataset's augmentation of
``(seed, index, epoch)`` (see :mod:`effowt.training.loader`). A resumed run
therefore continues bit for bit like an uninterrupted one on CPU (GPU kernels
may be non-deterministic). RNG states are saved in ``train_state.pt`` as well.
"""

from __future__ import annotations

import contextlib
import json
import random
import signal
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from effowt.config import EffOWTConfig, load_config, save_config, to_dict
from effowt.data.coco import TwoViewCocoDataset, collate_two_views
from effowt.distributed import DistEnv, agree, barrier, distributed
from effowt.errors import ConfigError, EffOWTError, Interrupted, OutputError, WeightsError
from effowt.fileio import (
    atomic_save_figure,
    atomic_write_json,
    atomic_write_text,
    output_error,
    prepare_output_dir,
    writable_parent,
)
from effowt.lockfile import folder_lock
from effowt.progress import bar_disable, show_progress
from effowt.runs import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    backbone_identity,
    build_seeded_model,
    load_weights,
    save_weights,
    snapshot_file,
)
from effowt.threads import set_threads
from effowt.training.loader import EpochLoader
from effowt.training.meters import StepTimer, format_report, parameter_counts, peak_memory, reset_peak_memory
from effowt.training.optim import LOSS_TERMS, per_process_batch
from effowt.training.resume import (
    STATE_FILE,
    assert_finite_weights,
    has_checkpoint,
    load_train_state,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from effowt.training.step import NonFiniteStepError, TrainStep

METRICS_FILE = "metrics.jsonl"
EFFICIENCY_FILE = "efficiency.json"
LOSS_PLOT_FILE = "loss.png"


def prepare_run_dir(run_dir: str | Path, resume: bool) -> Path:
    """Create ``run_dir`` and prove it writable (:func:`effowt.fileio.prepare_output_dir`),
    before any training; refuse (:func:`check_run_dir`) to start a fresh run over an
    existing checkpoint and to resume without one."""
    run_dir = prepare_output_dir(run_dir)
    check_run_dir(run_dir, resume)
    return run_dir


def check_run_dir(run_dir: Path, resume: bool) -> None:
    """EffOWTError, writing nothing, when ``run_dir`` cannot be created or written, a
    fresh run would overwrite a checkpoint in it or ``resume`` finds none there."""
    if writable_parent(run_dir) is None or (run_dir.exists() and not run_dir.is_dir()):
        raise OutputError(f"{run_dir}: cannot create the output folder (a file is in the way or "
                          "no write permission); choose another --out")
    if resume and not has_checkpoint(run_dir):
        raise EffOWTError(
            f"{run_dir}: --resume given but there is no checkpoint ({WEIGHTS_FILE} + {STATE_FILE}) to resume"
        )
    if not resume and (run_dir / WEIGHTS_FILE).exists():
        raise EffOWTError(
            f"{run_dir}: already holds a checkpoint; pass --resume to continue it or choose another --out"
        )


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def check_resume_config(cfg: EffOWTConfig, run_dir: Path, allowed: Sequence[str] = ()) -> dict[str, list[Any]]:
    """A resumed run keeps the run's own ``config.yaml``: a setting that differs from it
    is a ``ConfigError`` naming the keys, unless ``allowed`` names it (``train.*`` and
    ``tracker.*`` only; model and data settings never change, the checkpoint was trained
    with them). Returns the allowed changes ``{key: [saved, new]}`` for the metrics."""
    saved = _flat(to_dict(load_config(str(run_dir / CONFIG_FILE))))
    now = _flat(to_dict(cfg))
    unknown = sorted(set(allowed) - saved.keys())
    if unknown:
        raise ConfigError(f"--allow-config-change: unknown key(s) {', '.join(unknown)}")
    changed = sorted(k for k in saved.keys() | now.keys() if saved.get(k) != now.get(k))

    def listed(keys: list[str]) -> str:
        return ", ".join(f"{k} {saved.get(k)!r} -> {now.get(k)!r}" for k in keys)

    fixed = [k for k in changed if not k.startswith(("train.", "tracker."))]
    if fixed:
        raise ConfigError(f"{run_dir / CONFIG_FILE}: cannot resume with different settings: {listed(fixed)}")
    refused = [k for k in changed if k not in allowed]
    if refused:
        raise ConfigError(
            f"{run_dir / CONFIG_FILE}: --resume continues with the run's own settings, these differ: "
            f"{listed(refused)}; pass --allow-config-change KEY for each to change it"
        )
    return {k: [saved.get(k), now.get(k)] for k in changed}


def seed_step(seed: int, step: int, rank: int) -> None:
    """Seed torch, numpy and python from ``(seed, step, rank)``."""
    value = ((seed * 1_000_003 + step) * 1009 + rank) % (2**32)
    torch.manual_seed(value)
    np.random.seed(value)
    random.seed(value)


def plot_losses(metrics_path: Path, out_path: Path) -> None:
    """Loss curves (total and each term against step) from ``metrics.jsonl`` to a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if "event" not in r]
    fig = Figure(figsize=(7, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    steps = [r["step"] for r in rows]
    for key in ("total", *LOSS_TERMS):
        ax.plot(steps, [r[key] for r in rows], label=key, linewidth=2.0 if key == "total" else 1.0)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (unweighted terms; total is weighted)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    atomic_save_figure(fig, out_path)


class Trainer:
    """Optimise ``model``'s trainable parameters on ``dataset`` into ``run_dir``.

    ``model`` follows the EffOWT contract (``named_trainable_parameters``,
    ``trainable_state_dict``, loss dict in train mode); ``collate_fn`` turns a list
    of dataset items into ``(images FloatTensor[B,3,H,W], targets list[B])``. Rank 0
    of ``env`` logs, shows progress and writes files. With ``resume`` the state in
    ``run_dir`` is restored first.
    """

    def __init__(
        self,
        cfg: EffOWTConfig,
        model: torch.nn.Module,
        dataset: torch.utils.data.Dataset,
        collate_fn: Any,
        run_dir: str | Path,
        env: DistEnv,
        resume: bool = False,
    ) -> None:
        tcfg = cfg.train
        self.cfg = cfg
        self.env = env
        self.run_dir = Path(run_dir)
        self.batch_size = per_process_batch(tcfg, env.world_size)
        self.model = model.to(env.device)
        self.train_step = TrainStep(self.model, tcfg, env)
        cuda = env.device.type == "cuda"
        self.loader = EpochLoader(
            dataset,
            batch_size=self.batch_size,
            collate_fn=collate_fn,
            seed=tcfg.seed,
            rank=env.rank,
            world_size=env.world_size,
            num_workers=cfg.data.num_workers,
            pin_memory=cuda,
        )
        self.identity = backbone_identity(self.model)
        self.step = 0
        self.saved_step: int | None = None
        self.saved_at = time.monotonic()  # the clock of train.checkpoint_every_s
        self.train_s_before = 0.0  # training wall time of the runs this one resumes
        self.fit_started = time.monotonic()
        if resume:
            self._restore()
        if env.enabled:
            self.train_step.ddp = DistributedDataParallel(
                self.model, device_ids=[env.device.index] if cuda else None, find_unused_parameters=tcfg.ddp_find_unused
            )

    def _restore(self) -> None:
        meta = load_weights(self.run_dir / WEIGHTS_FILE, self.model)
        state = load_train_state(self.run_dir / STATE_FILE)
        if state["step"] != meta["step"]:
            raise EffOWTError(
                f"{self.run_dir}: {WEIGHTS_FILE} (step {meta['step']}) and {STATE_FILE} "
                f"(step {state['step']}) disagree; the checkpoint is incomplete"
            )
        if state["world_size"] != self.env.world_size:
            warnings.warn(
                f"resuming a {state['world_size']}-process run with {self.env.world_size} process(es): "
                "the data order differs from an uninterrupted run",
                UserWarning,
                stacklevel=3,
            )
        self.train_step.optimizer.load_state_dict(state["optimizer"])
        self.train_step.scheduler.load_state_dict(state["scheduler"])
        self.train_step.scaler.load_state_dict(state["scaler"])
        self.loader.load_state_dict(state["data"])
        set_rng_state(state["rng"])
        self.step = self.saved_step = int(state["step"])
        self.train_s_before = float(state.get("train_s", 0.0))  # older checkpoints did not record it

    def _train_state(self) -> dict[str, Any]:
        return {
            "optimizer": self.train_step.optimizer.state_dict(),
            "scheduler": self.train_step.scheduler.state_dict(),
            "scaler": self.train_step.scaler.state_dict(),
            "data": self.loader.state_dict(),
            "rng": rng_state(),
            "world_size": self.env.world_size,
            "train_s": self._train_s(),
        }

    def _train_s(self) -> float:
        """Training wall time up to now, across resumes (the time between a run's
        last checkpoint and its interruption is trained again, so not counted twice)."""
        return self.train_s_before + time.monotonic() - self.fit_started

    def checkpoint(self) -> None:
        """Write the checkpoint of the current step (rank 0; every rank first checks
        that the weights are finite, so all stop together if they are not)."""
        barrier(self.env)
        try:
            if self.env.is_main:
                save_checkpoint(self.run_dir, self.model, self.step, self._train_state(), self.identity)
            else:
                assert_finite_weights(self.model, self.step)
        except WeightsError as err:
            raise EffOWTError(f"{err}; {self._stopped()}") from None
        barrier(self.env)
        self.saved_step = self.step
        self.saved_at = time.monotonic()

    def _log(self, record: dict[str, Any]) -> None:
        if self.env.is_main:
            path = self.run_dir / METRICS_FILE
            try:
                with open(path, "a") as f:
                    f.write(json.dumps(record) + "\n")
            except OSError as err:
                raise output_error(path, err) from None

    def _efficiency(self, phase: str, timer: StepTimer) -> dict[str, Any]:
        report = {
            "event": "efficiency",
            "phase": phase,
            "step": self.step,
            "mode": self.cfg.model.mode,
            "device": str(self.env.device),
            "world_size": self.env.world_size,
            "batch_size": self.batch_size,
            "amp": self.cfg.train.amp if self.train_step.amp_dtype is not None else "none",
            **parameter_counts(self.model),
            **peak_memory(self.env.device),
            **timer.summary(),
        }
        if self.env.is_main:
            tqdm.write(format_report(report))
            self._log(report)
        return report

    def _progress_line(self, record: dict[str, Any], step_s: float, first_step: int) -> str:
        """``step 20/1000  loss 1.234 (loss_cls 0.5, ...)  lr 2e-04  0.41 s/step  ETA 6m41s``:
        the mean step time since this fit started gives the ETA."""
        max_steps = self.cfg.train.max_steps
        mean_s = (time.monotonic() - self.fit_started) / max(1, self.step - first_step)
        eta_s = int(mean_s * (max_steps - self.step))
        terms = ", ".join(f"{k} {record[k]:.3f}" for k in LOSS_TERMS if k in record)
        lr = self.train_step.optimizer.param_groups[0]["lr"]
        return (f"step {self.step}/{max_steps}  loss {record['total']:.4f} ({terms})  lr {lr:.3g}  "
                f"{step_s:.2f} s/step  ETA {eta_s // 3600}h{eta_s % 3600 // 60:02d}m{eta_s % 60:02d}s")

    def _stopped(self) -> str:
        if self.saved_step is None:
            return "training stopped, no checkpoint had been written yet"
        return f"training stopped, the last good checkpoint (step {self.saved_step}) in {self.run_dir} is kept"

    def _train_step(self, batches: Any) -> tuple[dict[str, float], int]:
        try:
            return self.train_step(batches, self.step + 1)
        except NonFiniteStepError as err:
            raise EffOWTError(f"{err}; {self._stopped()}") from None

    def fit(self) -> dict[str, Any]:
        """Train from the current step to ``train.max_steps``; returns the end
        efficiency report plus the last logged values under ``"last"`` and the
        training wall time across resumes under ``"train_s"``. SIGINT /
        SIGTERM (KeyboardInterrupt) raise :class:`Interrupted` naming the checkpoint kept."""
        try:
            return self._fit()
        except KeyboardInterrupt as err:
            again = ("run the same command again to start over" if self.saved_step is None
                     else "run the same command with --resume to continue from there")
            raise Interrupted(getattr(err, "signum", signal.SIGINT),
                              f"{self._stopped()}; {again}") from None

    def _fit(self) -> dict[str, Any]:
        tcfg = self.cfg.train
        self.model.train()
        timer = StepTimer()
        self._efficiency("start", timer)
        reset_peak_memory(self.env.device)
        batches = iter(self.loader)
        bar = tqdm(
            total=tcfg.max_steps,
            initial=self.step,
            desc="train",
            dynamic_ncols=True,
            disable=bar_disable() if self.env.is_main else True,
        )
        lines = self.env.is_main and show_progress()
        self.fit_started, first_step = time.monotonic(), self.step
        last: dict[str, Any] = {}
        window: list[float] = []
        with bar:
            while self.step < tcfg.max_steps:
                seed_step(tcfg.seed, self.step, self.env.rank)
                timer.start()
                record, n_images = self._train_step(batches)
                self.step += 1
                images = n_images * self.env.world_size
                window.append(timer.stop(images))
                bar.update(1)
                bar.set_postfix(loss=f"{record['total']:.4f}", img_s=f"{images / window[-1]:.1f}")
                if self.step % tcfg.log_every == 0 or self.step == tcfg.max_steps:
                    step_s = sum(window) / len(window)
                    last = {
                        "step": self.step,
                        **record,
                        "images_per_s": images / step_s,
                        "step_s": step_s,
                        "epoch": self.loader.epoch,
                    }
                    self._log(last)
                    window = []
                    if lines:
                        tqdm.write(self._progress_line(record, step_s, first_step), file=sys.stderr)
                overdue = bool(tcfg.checkpoint_every_s) and agree(
                    time.monotonic() - self.saved_at >= tcfg.checkpoint_every_s, self.env)
                if self.step % tcfg.checkpoint_every == 0 or (overdue and self.step < tcfg.max_steps):
                    self.checkpoint()
                if tcfg.snapshot_every and self.step % tcfg.snapshot_every == 0 and self.env.is_main:
                    save_weights(self.run_dir / snapshot_file(self.step), self.model, self.step, self.identity)
        if self.saved_step != self.step:
            self.checkpoint()
        report = self._efficiency("end", timer)
        if self.env.is_main:
            atomic_write_json(self.run_dir / EFFICIENCY_FILE, report)
            plot_losses(self.run_dir / METRICS_FILE, self.run_dir / LOSS_PLOT_FILE)
        return {**report, "last": last, "train_s": round(self._train_s(), 1)}


def _truncate_metrics(path: Path, step: int, resume: bool) -> None:
    """Start ``metrics.jsonl`` afresh, or on resume drop what was logged after the
    checkpoint's step (those steps are trained again)."""
    if not resume or not path.exists():
        atomic_write_text(path, "")
        return
    keep = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line).get("step", 0) <= step]
    atomic_write_text(path, "".join(line + "\n" for line in keep))


def train(
    cfg: EffOWTConfig,
    ann_file: str | Path,
    image_dir: str | Path,
    run_dir: str | Path,
    resume: bool = False,
    device: str | None = None,
    allow_config_change: Sequence[str] = (),
    threads: int | None = None,
) -> dict[str, Any]:
    """Train ``cfg.model`` on the COCO-format set ``ann_file`` / ``image_dir`` into
    ``run_dir`` (resuming its checkpoint with ``resume``); also under ``torchrun``.

    A resume must keep the run's saved settings except the keys named in
    ``allow_config_change`` (see :func:`check_resume_config`); the changes are
    logged in ``metrics.jsonl`` as ``{"event": "config_change", "step", "changes"}``.

    ``device`` is ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``None`` (CUDA when available).
    ``threads``: torch CPU threads per process (None: :mod:`effowt.threads`' default
    for the model's size, the usable cores shared among the processes). Returns
    the end-of-run efficiency report with the last logged values under ``"last"``.
    """
    with distributed(device) as env, contextlib.ExitStack() as held:
        per_process_batch(cfg.train, env.world_size)  # a batch that does not split fails before any work
        run_dir = Path(run_dir)
        changes: dict[str, list[Any]] = {}
        # every input is checked before anything is written: the run folder's checkpoint
        # and settings, the json and all its images, then the model with its backbone
        # weights (a missing or mismatched file fails here)
        if env.is_main:
            check_run_dir(run_dir, resume)
            if resume:
                changes = check_resume_config(cfg, run_dir, allow_config_change)
        dataset = TwoViewCocoDataset(ann_file, image_dir, cfg.data, seed=cfg.train.seed)
        model = build_seeded_model(cfg)
        set_threads(threads, model, env.world_size if env.device.type == "cpu" else 1)
        if env.is_main:  # one training per folder: a second one is refused while this one runs
            held.enter_context(folder_lock(prepare_run_dir(run_dir, resume)))
            save_config(cfg, run_dir / CONFIG_FILE)
        barrier(env)
        trainer = Trainer(cfg, model, dataset, collate_two_views, run_dir, env, resume=resume)
        if env.is_main:
            _truncate_metrics(run_dir / METRICS_FILE, trainer.step, resume)
        if changes:
            trainer._log({"event": "config_change", "step": trainer.step, "changes": changes})
        return trainer.fit()
