"""The data path from files to the device: workers, pinned memory, non-blocking copies, normalisation there.

On CUDA the images leave the workers as uint8 (a quarter of the float bytes to pin and copy) and the
labels as uint8 when every value fits (an eighth of int64's); both are copied with ``non_blocking`` from
pinned memory, and the image is normalised (the checkpoint's :class:`~fcnseg.preprocessing.Preprocessing`)
on the device (:func:`~fcnseg.runtime.evaluation.to_device`). Padding that
:func:`uint8_collate` adds to batch images of different sizes is zeroed after
normalisation, so the network input equals :func:`~fcnseg.data.transforms.pad_collate` of normalised images
exactly (tested on the CPU).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from ..data.base import IGNORE_INDEX
from ..runtime.hardware import cpu_count

__all__ = ["Batch", "auto_workers", "train_loader", "uint8_collate"]


def auto_workers(device: torch.device, local_world: int = 1, cores: int | None = None) -> int:
    """Loader workers for ``data.workers: auto``.

    CUDA: this rank's share of the cores less one for the training thread, at most 8 (a GPU step of an FCN
    takes a few images; 8 decoders keep it fed). CPU: 0 — the training step itself uses every core, and a
    worker would only move the decoding onto cores the convolutions need.
    """
    if device.type != "cuda":
        return 0
    share = (cores if cores is not None else cpu_count()) // max(1, local_world)
    return max(0, min(8, share - 1))


Batch = tuple[Tensor, Any, Tensor]


def uint8_collate(batch: Sequence[tuple[Tensor, Any]]) -> Batch:
    """``(images uint8 (N, C, H, W), labels, sizes (N, 2))``: padded to the largest image (image 0, label 255).

    Labels are uint8 when all values are in 0…255 (checked here, in the worker), else int64.
    """
    images = [b[0].as_subclass(Tensor) for b in batch]
    h = max(int(i.shape[-2]) for i in images)
    w = max(int(i.shape[-1]) for i in images)
    sizes = torch.tensor([[int(i.shape[-2]), int(i.shape[-1])] for i in images], dtype=torch.int64)

    def pad(t: Tensor, value: int) -> Tensor:
        return torch.nn.functional.pad(t, (0, w - t.shape[-1], 0, h - t.shape[-2]), value=value)

    x = torch.stack([pad(i, 0) for i in images])

    def stack(masks: list[Tensor]) -> Tensor:
        m = torch.stack([pad(t.as_subclass(Tensor), IGNORE_INDEX) for t in masks])
        fits = m.numel() == 0 or (int(m.min()) >= 0 and int(m.max()) <= 255)
        return m.to(torch.uint8) if fits else m

    first = batch[0][1]
    y: Any = (
        {k: stack([b[1][k] for b in batch]) for k in first} if isinstance(first, dict) else stack([b[1] for b in batch])
    )
    return x, y, sizes


def train_loader(
    dataset: Dataset, batch_sampler: Sampler, device: torch.device, *, workers: int, collate_fn: Any
) -> DataLoader:
    """The training DataLoader: ``workers`` processes kept for the run, pinned batches on CUDA, prefetch 4."""
    extra: dict[str, Any] = {"persistent_workers": True, "prefetch_factor": 4} if workers > 0 else {}
    return DataLoader(
        dataset,
        batch_sampler=batch_sampler,
        collate_fn=collate_fn,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        **extra,
    )
