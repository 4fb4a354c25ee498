"""The dataset contract and the VOC colour palette.

Every fcnseg dataset returns ``(image, mask)``: ``tv_tensors.Image`` (uint8 ``3×H×W`` RGB, or float
after transforms) and ``tv_tensors.Mask`` (int64 ``H×W``, 255 = ignore). Multi-task sets return a dict
of masks; multi-modal sets an image with more channels. Each exposes ``classes`` (the first mask's),
``head_classes`` (``{mask key: classes}``), ``palette`` (``(256, 3)`` uint8) and ``ignore_index``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors

from .palette import IGNORE_INDEX, voc_palette

__all__ = ["IGNORE_INDEX", "SegmentationDataset", "to_sample", "voc_palette"]


def to_sample(image: np.ndarray, mask: np.ndarray) -> tuple[tv_tensors.Image, tv_tensors.Mask]:
    """``(H, W, C)`` uint8 image and ``(H, W)`` labels → the contract's tensors."""
    img = tv_tensors.Image(torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))))
    return img, tv_tensors.Mask(torch.from_numpy(mask.astype(np.int64)))


class SegmentationDataset(Dataset):
    """Base class: subclasses implement ``__len__`` and ``load(index) -> (image, mask)``.

    Args:
        transforms: callable on ``(image, mask)``, e.g. a ``torchvision.transforms.v2`` pipeline.
    """

    classes: Sequence[str] = ()
    ignore_index: int = IGNORE_INDEX

    def __init__(self, transforms: Callable[..., Any] | None = None) -> None:
        self.transforms = transforms

    @property
    def palette(self) -> np.ndarray:
        return voc_palette()

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def head_classes(self) -> dict[str, list[str]]:
        """Class names per mask of a sample, keyed as the masks are: ``{"": classes}`` for a single mask."""
        return {"": list(self.classes)}

    def load(self, index: int) -> tuple[Any, Any]:
        raise NotImplementedError

    def describe(self, index: int) -> str:
        """What sample ``index`` is on disk (its label file), for messages; ``sample N`` by default."""
        return f"sample {index}"

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {type(self).__name__} of length {len(self)}")
        image, mask = self.load(index)
        if self.transforms is not None:
            image, mask = self.transforms(image, mask)
        return image, mask
