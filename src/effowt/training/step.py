"""One optimizer step, exactly as ``effowt train`` takes it.

:class:`TrainStep` is the trainer's step and the one ``effowt bench efficiency``
times, so the benchmark measures what training does: ``train.accumulate``
micro-batches, each under autocast (CUDA with ``train.amp``), the weighted loss
(:func:`~effowt.training.optim.weighted_loss`) backpropagated through a
GradScaler, then gradient clipping (``train.clip_grad``), AdamW with decoupled
weight decay and one step of the learning-rate schedule.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import nullcontext

import torch
from torch.nn.parallel import DistributedDataParallel

from effowt.config import TrainConfig
from effowt.distributed import DistEnv, all_reduce_mean
from effowt.errors import EffOWTError
from effowt.training.optim import LOSS_TERMS, build_optimizer, build_scheduler, weighted_loss

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
Batch = tuple[torch.Tensor, list[dict[str, torch.Tensor]]]


class NonFiniteStepError(EffOWTError):
    """A loss term or the gradient norm of a step is NaN or infinite."""


class TrainStep:
    """Optimise the trainable parameters of ``model`` one step at a time.

    Args:
        model: follows the EffOWT contract (``named_trainable_parameters``, a dict of the
            five unweighted loss terms in train mode); already on ``env.device``.
        cfg: the ``train`` section (optimizer, schedule, accumulation, AMP, clipping).
        env: the process's place in the world; logged values are averaged over it.

    Attributes:
        optimizer, scheduler, scaler: AdamW, its LambdaLR schedule and the GradScaler
            (enabled for fp16 only); their state dicts are the resume state.
        ddp: the DistributedDataParallel wrapper the forward goes through, when
            the trainer sets one (gradients are then synchronised once per step).
        amp_dtype: the autocast dtype, ``None`` when autocast is off (always on CPU).
    """

    def __init__(self, model: torch.nn.Module, cfg: TrainConfig, env: DistEnv) -> None:
        self.model = model
        self.cfg = cfg
        self.env = env
        named = model.named_trainable_parameters()
        self.params = [p for _, p in named]
        self.optimizer = build_optimizer(named, cfg)
        self.scheduler = build_scheduler(self.optimizer, cfg)
        cuda = env.device.type == "cuda"
        if cfg.amp != "none" and not cuda:
            warnings.warn(f"train.amp={cfg.amp} ignored on CPU (autocast is used on CUDA only)", UserWarning,
                          stacklevel=2)
        self.amp_dtype = AMP_DTYPES.get(cfg.amp) if cuda else None
        self.scaler = torch.amp.GradScaler(env.device.type, enabled=self.amp_dtype is torch.float16)
        self.ddp: DistributedDataParallel | None = None

    def __call__(self, batches: Iterator[Batch], step: int) -> tuple[dict[str, float], int]:
        """Take optimizer step number ``step`` (1-based, for messages) on the next
        ``cfg.accumulate`` batches ``(images float[B, 3, H, W], targets)``.

        Returns the logged values (the five loss terms and ``total``, averaged over
        micro-batches and processes, plus ``lr`` and ``grad_norm``) and the number of
        images this process used. Raises :class:`NonFiniteStepError` naming the step
        and the term, before the weights change, when a value is NaN or infinite.
        """
        cfg, device = self.cfg, self.env.device
        net = self.ddp if self.ddp is not None else self.model
        self.optimizer.zero_grad(set_to_none=True)
        sums = torch.zeros(len(LOSS_TERMS) + 1, device=device)
        n_images = 0
        for micro in range(cfg.accumulate):
            images, targets = next(batches)
            images = images.to(device, non_blocking=True)
            targets = [{k: v.to(device, non_blocking=True) for k, v in t.items()} for t in targets]
            sync = self.ddp.no_sync() if self.ddp is not None and micro < cfg.accumulate - 1 else nullcontext()
            autocast = (
                torch.autocast(device_type=device.type, dtype=self.amp_dtype)
                if self.amp_dtype is not None
                else nullcontext()
            )
            with sync:
                with autocast:
                    losses = net(images, targets)
                losses = {k: v.float() for k, v in losses.items()}
                total = weighted_loss(losses, cfg)
                self.scaler.scale(total / cfg.accumulate).backward()
            sums += torch.stack([losses[k].detach() for k in LOSS_TERMS] + [total.detach()])
            n_images += images.shape[0]
        values = all_reduce_mean(sums / cfg.accumulate, self.env).tolist()
        for name, value in zip((*LOSS_TERMS, "total"), values):
            if not math.isfinite(value):
                raise NonFiniteStepError(f"step {step}: loss term {name} is {value}")
        self.scaler.unscale_(self.optimizer)
        max_norm = cfg.clip_grad if cfg.clip_grad > 0 else math.inf
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.params, max_norm))
        if not math.isfinite(grad_norm) and not self.scaler.is_enabled():
            raise NonFiniteStepError(f"step {step}: gradient norm is {grad_norm}")
        lr = self.optimizer.param_groups[0]["lr"]
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        record = dict(zip((*LOSS_TERMS, "total"), values))
        record.update(lr=lr, grad_norm=grad_norm)
        return record, n_images
