"""Which images a training step sees: a pure function of ``(seed, micro-step)``, sharded by rank.

Indices are drawn with replacement (as the reference's solver samples), from a generator seeded by the
micro-step, so a resumed run needs no sampler state and ``world`` processes with batch ``b`` see exactly
the images one process with batch ``b × world`` sees. Augmentation is seeded per sample, whatever the
number of DataLoader workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import Dataset, Sampler

from .distributed import DistInfo

__all__ = ["Seeded", "StepSampler"]


class StepSampler(Sampler[list[tuple[int, int]]]):
    """Yields, for micro-step ``m``, this rank's share of ``batch × world`` (index, seed) pairs.

    Indices are drawn with replacement from a generator seeded by ``(seed, m)``; rank ``r`` takes
    positions ``r, r + world, …``, so one process with batch ``batch × world`` sees the same images.
    """

    def __init__(self, n: int, batch: int, seed: int, start: int, stop: int, dist: DistInfo) -> None:
        self.n, self.batch, self.seed, self.start, self.stop, self.dist = n, batch, seed, start, stop, dist

    def indices(self, m: int) -> list[tuple[int, int]]:
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + m) % 2**63)  # any seed in train.seed's range
        idx = torch.randint(self.n, (self.batch * self.dist.world,), generator=g).tolist()
        seeds = torch.randint(2**31 - 1, (len(idx),), generator=g).tolist()
        pairs = list(zip(idx, seeds, strict=True))
        return pairs[self.dist.rank :: self.dist.world]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for m in range(self.start, self.stop):
            yield self.indices(m)

    def __len__(self) -> int:
        return self.stop - self.start


class Seeded(Dataset):
    """Loads sample ``index`` with the global RNG seeded per sample, so augmentation is reproducible
    whatever the number of workers, without disturbing the training process's RNG."""

    def __init__(self, ds: Dataset) -> None:
        self.ds = ds

    def __len__(self) -> int:
        return len(self.ds)  # type: ignore[arg-type]

    def __getitem__(self, item: tuple[int, int]) -> Any:
        index, seed = item
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.ds[index]
