"""Transforms on ``torchvision.transforms.v2``: image and mask go through every step together.

* :func:`eval_transforms` — the reference's preprocessing and nothing else: no resize, whole images
  (Caffe BGR mean subtraction or torchvision's ImageNet normalisation, from the weights' record).
* :func:`train_transforms` — the modern recipe: random scale, mirror, and a crop whose padding is
  labelled 255 so it is ignored by the loss and the metrics.
* :func:`pad_collate` — batches of different sizes padded to the largest (image 0, mask 255); with
  batch 1 (the reference) it only stacks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torchvision import tv_tensors
from torchvision.transforms import v2

from ..preprocessing import Preprocessing
from .base import IGNORE_INDEX

__all__ = ["ModalityNormalize", "Normalize", "augmentations", "eval_transforms", "pad_collate", "train_transforms"]


class Normalize(v2.Transform):
    """Apply a :class:`~fcnseg.preprocessing.Preprocessing` to images; masks pass unchanged.

    Images with more than 3 channels (colour + depth) get the preprocessing on their first three.
    """

    def __init__(self, preprocessing: Preprocessing) -> None:
        super().__init__()
        self.preprocessing = preprocessing

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if isinstance(inpt, tv_tensors.Image):
            x = inpt.as_subclass(Tensor)
            rgb = self.preprocessing(x[..., :3, :, :])
            out = torch.cat([rgb, x[..., 3:, :, :].float()], dim=-3) if x.shape[-3] > 3 else rgb
            return tv_tensors.Image(out)
        return inpt


class ModalityNormalize(v2.Transform):
    """Apply a dataset's own per-modality preprocessing (NYUDv2: colour, HHA and depth means)."""

    def __init__(self, fn: Any) -> None:
        super().__init__()
        self.fn = fn

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if isinstance(inpt, tv_tensors.Image):
            return tv_tensors.Image(self.fn(inpt.as_subclass(Tensor)))
        return inpt


def eval_transforms(preprocessing: Preprocessing) -> v2.Compose:
    """Preprocessing only (the reference evaluates whole images at their own size)."""
    return v2.Compose([Normalize(preprocessing)])


def train_transforms(
    preprocessing: Preprocessing,
    *,
    crop_size: int | None = None,
    scale_range: tuple[float, float] = (1.0, 1.0),
    flip: bool = False,
) -> v2.Compose:
    """Modern-recipe augmentation; with the defaults it is the reference (no augmentation at all)."""
    return v2.Compose(
        [*augmentations(crop_size=crop_size, scale_range=scale_range, flip=flip), Normalize(preprocessing)]
    )


def augmentations(
    *, crop_size: int | None = None, scale_range: tuple[float, float] = (1.0, 1.0), flip: bool = False
) -> list[v2.Transform]:
    """The augmentation steps alone (random scale, mirror, crop with ignore padding), before any normalisation."""
    steps: list[v2.Transform] = []
    if scale_range != (1.0, 1.0):
        steps.append(
            v2.RandomAffine(degrees=0, scale=scale_range, fill={tv_tensors.Image: 0, tv_tensors.Mask: IGNORE_INDEX})
        )
    if flip:
        steps.append(v2.RandomHorizontalFlip())
    if crop_size:
        steps.append(
            v2.RandomCrop(crop_size, pad_if_needed=True, fill={tv_tensors.Image: 0, tv_tensors.Mask: IGNORE_INDEX})
        )
    return steps


def pad_collate(batch: Sequence[tuple[Tensor, Any]]) -> tuple[Tensor, Any]:
    """Stack samples, padding each to the largest height and width (image 0, mask 255, bottom/right)."""
    images = [b[0] for b in batch]
    h = max(int(i.shape[-2]) for i in images)
    w = max(int(i.shape[-1]) for i in images)

    def pad(t: Tensor, value: float) -> Tensor:
        return torch.nn.functional.pad(t, (0, w - t.shape[-1], 0, h - t.shape[-2]), value=value)

    x = torch.stack([pad(i.as_subclass(Tensor), 0) for i in images])
    masks = [b[1] for b in batch]
    if isinstance(masks[0], dict):
        y: Any = {k: torch.stack([pad(m[k].as_subclass(Tensor), IGNORE_INDEX) for m in masks]) for k in masks[0]}
    else:
        y = torch.stack([pad(m.as_subclass(Tensor), IGNORE_INDEX) for m in masks])
    return x, y
