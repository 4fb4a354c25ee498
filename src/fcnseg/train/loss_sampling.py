"""Loss sampling (the paper's §4.3): each final-layer cell's pixels left out of the loss with probability 1 − p.

The paper compares whole-image training with *sampling the loss*: every cell of the final (stride-32)
score layer is kept with probability ``p``, its pixels otherwise ignored, the batch raised by ``1/p`` so
that each step sees as many loss pixels; it found whole images converge as well and faster in wall time.
``train.loss_sampling: p`` (1.0 = whole images, the default) does this on the targets: a Bernoulli(p) mask
on the stride-32 grid of each image, repeated over its 32 × 32 pixels, sets the dropped pixels to void.
The draw is a pure function of ``(train.seed, step, micro-step, rank)``, so a resumed run drops the same
cells; raising the batch is the recipe's job (``data.batch_size``).
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["CELL", "drop_cells", "sampling_generator"]

#: the final score layer's stride: one cell of it covers CELL × CELL input pixels
CELL = 32


def sampling_generator(seed: int, step: int, micro: int, rank: int) -> torch.Generator:
    """The generator of one micro-step's draw (independent streams per seed, step, micro-step and rank)."""
    mixed = (seed * 0x9E3779B1 + step * 0x85EBCA77 + micro * 0xC2B2AE3D + rank * 0x27D4EB2F) % (2**63 - 1)
    return torch.Generator().manual_seed(mixed)


def drop_cells(target: Any, keep: float, generator: torch.Generator, *, ignore_index: int = 255) -> Any:
    """``target`` ``(N, H, W)`` (or a dict of them, one mask for all heads) with each 32 × 32 cell kept with
    probability ``keep`` and set to ``ignore_index`` otherwise."""
    if keep >= 1.0:
        return target
    first = next(iter(target.values())) if isinstance(target, dict) else target
    n, h, w = first.shape
    cells = torch.rand(n, -(-h // CELL), -(-w // CELL), generator=generator) < keep
    mask = cells.repeat_interleave(CELL, 1).repeat_interleave(CELL, 2)[:, :h, :w].to(first.device)

    def apply(t: torch.Tensor) -> torch.Tensor:
        return torch.where(mask, t, torch.full_like(t, ignore_index))

    return {k: apply(v) for k, v in target.items()} if isinstance(target, dict) else apply(target)
