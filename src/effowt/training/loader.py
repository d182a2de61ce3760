"""Endless, resumable iteration over a training set.

The order of every epoch is a function of ``(seed, epoch)`` only (a
:class:`~torch.utils.data.DistributedSampler`, also in a world of one), and the
position is ``(epoch, batches consumed in that epoch)``. Restoring that pair
restarts the stream at exactly the next batch. Augmentation randomness must not
come from a stream either: a dataset with ``set_epoch(epoch)`` is told the epoch
before each pass (``TwoViewCocoDataset`` derives its randomness from
``(seed, index, epoch)``), and the loader's own generator -- which seeds the
worker processes -- is re-seeded from ``(seed, epoch)`` at the start of each pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from effowt.errors import DataError


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` (shuffled, ``drop_last``) that can start mid-epoch:
    :meth:`set_start` skips this rank's first ``n`` indices of the current epoch."""

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, seed: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=True)
        self.start = 0

    def set_start(self, n: int) -> None:
        """Skip the first ``n`` indices of this rank's share of the epoch."""
        self.start = n

    def __iter__(self) -> Iterator[int]:
        return iter(list(super().__iter__())[self.start :])

    def __len__(self) -> int:
        return max(0, self.num_samples - self.start)


class EpochLoader:
    """Infinite batches from ``dataset``, epoch after epoch, resumable.

    ``epoch`` and ``batch_in_epoch`` are the position of the next batch;
    :meth:`state_dict` / :meth:`load_state_dict` save and restore it.
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        collate_fn: Callable[[list[Any]], Any],
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        self.dataset = dataset
        self.batch_size = batch_size
        self.seed = seed
        self.sampler = ResumableSampler(dataset, num_replicas=world_size, rank=rank, seed=seed)
        self.batches_per_epoch = self.sampler.num_samples // batch_size
        if self.batches_per_epoch == 0:
            raise DataError(
                f"the training set has {len(dataset)} images, fewer than one batch "
                f"(batch_size {batch_size} x {world_size} process(es))"
            )
        self.generator = torch.Generator()
        self.loader = DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=self.sampler,
            drop_last=True,
            collate_fn=collate_fn,
            num_workers=num_workers,
            pin_memory=pin_memory,
            generator=self.generator,
        )
        self.epoch = 0
        self.batch_in_epoch = 0

    def state_dict(self) -> dict[str, int]:
        """The position of the next batch."""
        return {"epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue from a position saved by :meth:`state_dict`."""
        self.epoch = int(state["epoch"])
        self.batch_in_epoch = int(state["batch_in_epoch"])

    def __iter__(self) -> Iterator[Any]:
        while True:
            self.sampler.set_epoch(self.epoch)
            self.sampler.set_start(self.batch_in_epoch * self.batch_size)
            if hasattr(self.dataset, "set_epoch"):
                self.dataset.set_epoch(self.epoch)
            self.generator.manual_seed(self.seed * 100_003 + self.epoch)
            for batch in self.loader:
                self.batch_in_epoch += 1
                yield batch
            self.epoch += 1
            self.batch_in_epoch = 0
