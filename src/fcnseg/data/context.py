"""PASCAL-Context (Mottaghi et al.), the reference's 59-class task (+ background = 60 outputs)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from ..files import read_text
from ._common import check_mask, load_mat_field, read_ids, read_photo, require_dir
from .base import SegmentationDataset, to_sample
from .classes import CONTEXT59_CLASSES

__all__ = ["PASCALContext", "context59_lut"]

#: 59_labels.txt spells three classes differently from the full labels.txt
_SPELLINGS = {"diningtable": "table", "bedcloth": "bedclothes", "clothes": "cloth"}


def _norm(name: str) -> str:
    return name.replace(" ", "").lower()


def context59_lut(labels_txt: Path) -> np.ndarray:
    """Lookup table full-label index → 59-task index (0 = background/other), from ``labels.txt``."""
    full: dict[str, int] = {}
    if not labels_txt.exists():
        raise DataError(f"{labels_txt}: PASCAL-Context full label list not found")
    lines = read_text(labels_txt, limit=1 << 20, what="label list").splitlines()
    for line in lines:
        if ":" in line:
            idx, name = line.split(":", 1)
            if idx.strip().isdigit():
                full[_norm(name)] = int(idx)
    if not full:
        raise DataError(f"{labels_txt}: no 'index: name' lines")
    lut = np.zeros(max(full.values()) + 1, np.uint8)
    for task_index, name in enumerate(CONTEXT59_CLASSES[1:], start=1):
        key = _norm(_SPELLINGS.get(name, name))
        if key not in full:
            raise DataError(f"{labels_txt}: class {name!r} of the 59-class task is not in the full list")
        lut[full[key]] = task_index
    return lut


class PASCALContext(SegmentationDataset):
    """VOC2010 JPEGs + ``trainval/<id>.mat`` (``LabelMap``) + ``labels.txt`` (the full label list).

    Layout (the reference's): ``root/VOC2010/JPEGImages/<id>.jpg`` (or under ``root/VOCdevkit``),
    ``root/trainval/<id>.mat``, ``root/labels.txt``, and the split lists ``root/<split>.txt`` (else
    ``VOC2010/ImageSets/Main/<split>.txt``). Every full label outside the 59 becomes background 0.
    """

    classes = CONTEXT59_CLASSES

    def __init__(self, root: str | Path, split: str = "train", *, transforms: Callable[..., Any] | None = None) -> None:
        super().__init__(transforms)
        self.root = Path(root)
        if split not in ("train", "val"):
            raise DataError(f"PASCAL-Context split must be train or val, got {split!r}")
        candidates = [self.root / "VOC2010", self.root / "VOCdevkit" / "VOC2010"]
        self.voc = next((c for c in candidates if c.is_dir()), None)
        if self.voc is None:
            raise DataError(f"{self.root}: no VOC2010 folder (looked for {', '.join(map(str, candidates))})")
        require_dir(self.root / "trainval", "PASCAL-Context trainval")
        self.lut = context59_lut(self.root / "labels.txt")
        listed = self.root / f"{split}.txt"
        self.ids = read_ids(listed if listed.is_file() else self.voc / "ImageSets" / "Main" / f"{split}.txt")
        self.split = split

    def __len__(self) -> int:
        return len(self.ids)

    def load(self, index: int) -> tuple[Any, Any]:
        i = self.ids[index]
        image, turn = read_photo(self.voc / "JPEGImages" / f"{i}.jpg")
        path = self.root / "trainval" / f"{i}.mat"
        full = load_mat_field(path, "LabelMap").astype(np.int64)
        if full.min() < 0 or full.max() >= len(self.lut):
            raise DataError(f"{path}: LabelMap values {full.min()}..{full.max()} outside the full label list")
        mask = self.lut[full]
        return to_sample(image, check_mask(mask, image.shape, len(self.classes), path, turn))
