"""PASCAL VOC 2011/2012 segmentation, as distributed (``root/VOCdevkit/VOC20xx``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import DataError
from ..io import read_label_png
from ._common import bundled_split, check_mask, read_ids, read_photo, require_dir
from .base import SegmentationDataset, to_sample
from .classes import VOC_CLASSES

__all__ = ["VOCSegmentation"]


class VOCSegmentation(SegmentationDataset):
    """``VOCdevkit/VOC2011|VOC2012/{JPEGImages,SegmentationClass,ImageSets/Segmentation}``.

    Args:
        root: the folder that contains ``VOCdevkit``.
        split: ``train``, ``val``, ``trainval`` or ``seg11valid`` (the paper's 736 images of VOC2011 val
            not in SBD train; fcnseg ships the list).
        year: ``"2011"`` or ``"2012"``; by default VOC2011 for seg11valid, else the newest present.
    """

    classes = VOC_CLASSES

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        year: str | None = None,
        transforms: Callable[..., Any] | None = None,
    ) -> None:
        super().__init__(transforms)
        devkit = require_dir(Path(root) / "VOCdevkit", "VOCdevkit")
        years = [year] if year else (["2011", "2012"] if split == "seg11valid" else ["2012", "2011"])
        found = [devkit / f"VOC{y}" for y in years if (devkit / f"VOC{y}").is_dir()]
        if not found:
            raise DataError(f"{devkit}: no VOC{'/VOC'.join(years)} folder")
        self.base = found[0]
        if split == "seg11valid":
            self.ids = bundled_split("seg11valid")
        elif split in ("train", "val", "trainval"):
            self.ids = read_ids(self.base / "ImageSets" / "Segmentation" / f"{split}.txt")
        else:
            raise DataError(f"VOC split must be train, val, trainval or seg11valid, got {split!r}")
        self.split = split

    def __len__(self) -> int:
        return len(self.ids)

    def load(self, index: int) -> tuple[Any, Any]:
        i = self.ids[index]
        image, turn = read_photo(self.base / "JPEGImages" / f"{i}.jpg")
        path = self.base / "SegmentationClass" / f"{i}.png"
        mask = check_mask(read_label_png(path), image.shape, len(self.classes), path, turn)
        return to_sample(image, mask)
