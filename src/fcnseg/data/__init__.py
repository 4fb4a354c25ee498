"""Datasets in their real on-disk formats, a synthetic set, and transforms.

``get_dataset(name, root, split, transforms=None, **kw)`` builds any of them by name (:mod:`.registry`).

Each name below is imported on first use: the readers import torchvision (and with it every torchvision model,
≈ 1 s) and SciPy, which a command that only predicts never needs, while ``fcnseg.data.classes`` and
``fcnseg.data.base`` stay importable on their own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes

if TYPE_CHECKING:
    from .ade20k import ADE20K
    from .base import IGNORE_INDEX, SegmentationDataset, voc_palette
    from .bounds import upper_bounds
    from .cityscapes import Cityscapes
    from .coco import COCOSegmentation
    from .context import PASCALContext
    from .folder import SegmentationFolder, open_folder
    from .nyud import NYUDv2
    from .registry import DATASETS, get_dataset, list_datasets
    from .sbd import SBDSegmentation
    from .siftflow import SIFTFlow
    from .synthetic import SyntheticShapes
    from .transforms import eval_transforms, train_transforms
    from .voc import VOCSegmentation

__all__ = [
    "ADE20K",
    "DATASETS",
    "IGNORE_INDEX",
    "COCOSegmentation",
    "Cityscapes",
    "NYUDv2",
    "PASCALContext",
    "SBDSegmentation",
    "SIFTFlow",
    "SegmentationDataset",
    "SegmentationFolder",
    "SyntheticShapes",
    "VOCSegmentation",
    "eval_transforms",
    "get_dataset",
    "list_datasets",
    "open_folder",
    "train_transforms",
    "upper_bounds",
    "voc_palette",
]

__getattr__, __dir__ = lazy_attributes(
    __name__,
    {
        "ADE20K": ".ade20k",
        **dict.fromkeys(("IGNORE_INDEX", "SegmentationDataset", "voc_palette"), ".base"),
        "upper_bounds": ".bounds",
        "Cityscapes": ".cityscapes",
        "COCOSegmentation": ".coco",
        "PASCALContext": ".context",
        **dict.fromkeys(("SegmentationFolder", "open_folder"), ".folder"),
        "NYUDv2": ".nyud",
        **dict.fromkeys(("DATASETS", "get_dataset", "list_datasets"), ".registry"),
        "SBDSegmentation": ".sbd",
        "SIFTFlow": ".siftflow",
        "SyntheticShapes": ".synthetic",
        **dict.fromkeys(("eval_transforms", "train_transforms"), ".transforms"),
        "VOCSegmentation": ".voc",
    },
)
