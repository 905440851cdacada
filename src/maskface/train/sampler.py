"""A distributed, resumable sampler: step ``s`` always trains on the same global batch, in any process layout.

Epoch ``e`` is a permutation of the dataset drawn from ``(seed, e)``; global batch ``s`` is the next
``batch_size`` items of that stream (the incomplete tail of an epoch is dropped). Process ``r`` of ``W`` takes items
``r, r + W, ...`` of each global batch. Items are ``(index, epoch)`` so datasets can draw per-epoch randomness, and
starting at any step needs no data to be read, which makes ``--resume`` exact.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class ResumableSampler(Sampler[tuple[int, int]]):
    """Endless ``(index, epoch)`` stream for one process, starting at global step ``start_step``."""

    def __init__(self, size: int, batch_size: int, seed: int = 0, start_step: int = 0, rank: int = 0,
                 world_size: int = 1):
        if batch_size % world_size:
            raise ValueError(f"global batch {batch_size} does not split evenly over {world_size} processes")
        if size < batch_size:
            raise ValueError(f"the dataset has {size} items, fewer than one batch of {batch_size}")
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.start_step, self.rank, self.world_size = start_step, rank, world_size
        self.steps_per_epoch = size // batch_size

    def epoch_of(self, step: int) -> int:
        return step // self.steps_per_epoch

    def _permutation(self, epoch: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        return torch.randperm(self.size, generator=generator)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        step = self.start_step
        epoch, order = -1, None
        while True:
            if self.epoch_of(step) != epoch:
                epoch = self.epoch_of(step)
                order = self._permutation(epoch)
            first = (step % self.steps_per_epoch) * self.batch_size
            batch = order[first : first + self.batch_size]
            for index in batch[self.rank :: self.world_size].tolist():
                yield index, epoch
            step += 1
