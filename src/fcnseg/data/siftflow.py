"""SIFT Flow (Liu et al.): 2688 outdoor scenes with semantic (33) and geometric (3) labels."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchvision import tv_tensors

from ..errors import DataError
from ._common import bundled_split, check_mask, load_mat_field, read_ids, read_photo, require_dir
from .base import IGNORE_INDEX, SegmentationDataset
from .classes import SIFTFLOW_GEOMETRIC_CLASSES, SIFTFLOW_SEMANTIC_CLASSES

__all__ = ["SIFTFlow"]

_SUB = "spatial_envelope_256x256_static_8outdoorcategories"
#: images of the release without annotations, never used
UNANNOTATED = frozenset({"highway_bost181", "street_urb506"})


def decode_semantic(s: np.ndarray) -> np.ndarray:
    """Label file ``S`` (0 void, 1–33) → 0–32, void 255."""
    return np.where(s >= 1, s - 1, IGNORE_INDEX).astype(np.uint8)


def decode_geometric(s: np.ndarray) -> np.ndarray:
    """Label file ``S`` (−1 void, 1–3) → 0–2, void 255."""
    return np.where(s >= 1, s - 1, IGNORE_INDEX).astype(np.uint8)


class SIFTFlow(SegmentationDataset):
    """``root/{Images,SemanticLabels,GeoLabels}/spatial_envelope_…/<id>.{jpg,mat}``; both tasks at once.

    Returns ``(image, {"sem": mask, "geo": mask})`` for the two-headed net
    (``get_model(..., heads={"sem": 33, "geo": 3})``).

    Args:
        root: the folder that contains ``Images``, ``SemanticLabels`` and ``GeoLabels``.
        split: ``trainval`` (2486) or ``test`` (200): ``root/<split>.txt`` if present, else the
            reference release's lists shipped with fcnseg. The two unannotated images are excluded.
    """

    classes = SIFTFLOW_SEMANTIC_CLASSES
    geometric_classes = SIFTFLOW_GEOMETRIC_CLASSES

    def __init__(
        self, root: str | Path, split: str = "trainval", *, transforms: Callable[..., Any] | None = None
    ) -> None:
        super().__init__(transforms)
        if split not in ("trainval", "test"):
            raise DataError(f"SIFT Flow split must be trainval or test, got {split!r}")
        self.root = Path(root)
        for sub in ("Images", "SemanticLabels", "GeoLabels"):
            require_dir(self.root / sub, f"SIFT Flow {sub}")
        listed = self.root / f"{split}.txt"
        ids = read_ids(listed) if listed.is_file() else bundled_split(f"siftflow_{split}")
        self.ids = [i for i in ids if i not in UNANNOTATED]
        self.split = split

    @property
    def head_classes(self) -> dict[str, list[str]]:
        return {"sem": list(self.classes), "geo": list(self.geometric_classes)}

    def __len__(self) -> int:
        return len(self.ids)

    def load(self, index: int) -> tuple[Any, Any]:
        i = self.ids[index]
        image, turn = read_photo(self.root / "Images" / _SUB / f"{i}.jpg")
        sem_path = self.root / "SemanticLabels" / _SUB / f"{i}.mat"
        geo_path = self.root / "GeoLabels" / _SUB / f"{i}.mat"
        sem = check_mask(decode_semantic(load_mat_field(sem_path, "S")), image.shape, 33, sem_path, turn)
        geo = check_mask(decode_geometric(load_mat_field(geo_path, "S")), image.shape, 3, geo_path, turn)
        img = tv_tensors.Image(torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))))
        masks = {k: tv_tensors.Mask(torch.from_numpy(v.astype(np.int64))) for k, v in (("sem", sem), ("geo", geo))}
        return img, masks
