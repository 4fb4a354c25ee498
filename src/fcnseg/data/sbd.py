"""Semantic Boundaries Dataset (Hariharan et al.), the reference's training set (``root/dataset``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import DataError
from ._common import bundled_split, check_mask, load_mat_field, read_ids, read_photo, require_dir
from .base import SegmentationDataset, to_sample
from .classes import VOC_CLASSES

__all__ = ["SBDSegmentation"]


class SBDSegmentation(SegmentationDataset):
    """``dataset/{img/<id>.jpg, cls/<id>.mat (GTcls.Segmentation), train.txt, val.txt}``.

    Args:
        root: the folder that contains ``dataset``.
        split: ``train``, ``val``, or ``train-seg11valid`` — SBD train minus the images of seg11valid,
            the reference release's training set (8498 images).
    """

    classes = VOC_CLASSES

    def __init__(self, root: str | Path, split: str = "train", *, transforms: Callable[..., Any] | None = None) -> None:
        super().__init__(transforms)
        self.base = require_dir(Path(root) / "dataset", "SBD dataset")
        if split in ("train", "val"):
            self.ids = read_ids(self.base / f"{split}.txt")
        elif split == "train-seg11valid":
            held_out = set(bundled_split("seg11valid"))
            self.ids = [i for i in read_ids(self.base / "train.txt") if i not in held_out]
        else:
            raise DataError(f"SBD split must be train, val or train-seg11valid, got {split!r}")
        self.split = split

    def __len__(self) -> int:
        return len(self.ids)

    def load(self, index: int) -> tuple[Any, Any]:
        i = self.ids[index]
        image, turn = read_photo(self.base / "img" / f"{i}.jpg")
        path = self.base / "cls" / f"{i}.mat"
        mask = load_mat_field(path, "GTcls", "Segmentation").astype("uint8")
        return to_sample(image, check_mask(mask, image.shape, len(self.classes), path, turn))
