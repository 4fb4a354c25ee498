"""The dataset registry: every dataset by name (``get_dataset``), importing all the readers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..registry import Registry
from .ade20k import ADE20K
from .base import SegmentationDataset
from .cityscapes import Cityscapes
from .coco import COCOSegmentation
from .context import PASCALContext
from .folder import SegmentationFolder, open_folder
from .nyud import NYUDv2
from .sbd import SBDSegmentation
from .siftflow import SIFTFlow
from .synthetic import SyntheticShapes
from .voc import VOCSegmentation

__all__ = ["DATASETS", "get_dataset", "list_datasets"]

DATASETS: Registry[Callable[..., SegmentationDataset]] = Registry("dataset")
DATASETS.register("voc")(VOCSegmentation)
DATASETS.register("sbd")(SBDSegmentation)
DATASETS.register("siftflow")(SIFTFlow)
DATASETS.register("nyudv2")(NYUDv2)
DATASETS.register("pascal_context")(PASCALContext)
DATASETS.register("cityscapes")(Cityscapes)
DATASETS.register("ade20k")(ADE20K)
DATASETS.register("coco")(COCOSegmentation)


@DATASETS.register("folder")
def _folder(root: str | Path, split: str | None = None, **kw: Any) -> SegmentationFolder:
    """``root/images`` + ``root/masks`` (or ``root/<split>/…``), or a CVAT "Segmentation mask 1.1" export."""
    return open_folder(root, split, **kw)


@DATASETS.register("synthetic")
def _synthetic(root: str | Path | None = None, split: str = "train", **kw: Any) -> SyntheticShapes:
    """SyntheticShapes; ``root`` is ignored (nothing on disk)."""
    return SyntheticShapes(split=split, **kw)


def get_dataset(
    name: str, root: str | Path | None, split: str = "train", transforms: Any = None, **kw: Any
) -> SegmentationDataset:
    """Build a dataset by name: voc, sbd, siftflow, nyudv2, pascal_context, cityscapes, ade20k, coco, folder or
    synthetic.

    Args:
        name: registry name (unknown names list the valid ones).
        root: the folder holding the dataset exactly as its authors distribute it.
        split: the split name (each dataset documents its own).
        transforms: callable on ``(image, mask)``.
        **kw: dataset-specific options (``year``, ``modalities``, ``n``, ``size``, ``seed`` …).
    """
    return DATASETS.get(name)(root, split, transforms=transforms, **kw)


def list_datasets() -> list[str]:
    return DATASETS.list()
