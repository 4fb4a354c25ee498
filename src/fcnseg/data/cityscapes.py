"""Cityscapes (Cordts et al. 2016): ``leftImg8bit`` photographs with ``gtFine`` (or ``gtCoarse``) label ids.

The label table below is the dataset's own, ``cityscapesscripts/helpers/labels.py`` (cityscapesScripts
2.3.0), copied row for row: name, label id, train id, colour. fcnseg does not depend on
``cityscapesscripts`` for it because that package pulls ten packages fcnseg does not otherwise need
(requests and its four dependencies, pyquaternion, coloredlogs, humanfriendly, appdirs and the obsolete
``typing`` backport) for a 35-row table. ``*_labelIds.png`` holds label ids 0…33; the 19 evaluated
classes get train ids 0…18 and every other id becomes 255 (ignored), as ``createTrainIdLabelImgs.py`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from ..io import read_label_png
from ._common import check_mask, read_photo, require_dir, require_files
from .base import IGNORE_INDEX, SegmentationDataset, to_sample, voc_palette

__all__ = ["CITYSCAPES_CLASSES", "CITYSCAPES_LABELS", "Cityscapes", "cityscapes_lut", "cityscapes_palette"]

#: (name, label id, train id, colour) — cityscapesscripts' ``labels`` list (``license plate`` has id -1:
#: it never appears in a ``labelIds`` image)
CITYSCAPES_LABELS: tuple[tuple[str, int, int, tuple[int, int, int]], ...] = (
    ("unlabeled", 0, 255, (0, 0, 0)),
    ("ego vehicle", 1, 255, (0, 0, 0)),
    ("rectification border", 2, 255, (0, 0, 0)),
    ("out of roi", 3, 255, (0, 0, 0)),
    ("static", 4, 255, (0, 0, 0)),
    ("dynamic", 5, 255, (111, 74, 0)),
    ("ground", 6, 255, (81, 0, 81)),
    ("road", 7, 0, (128, 64, 128)),
    ("sidewalk", 8, 1, (244, 35, 232)),
    ("parking", 9, 255, (250, 170, 160)),
    ("rail track", 10, 255, (230, 150, 140)),
    ("building", 11, 2, (70, 70, 70)),
    ("wall", 12, 3, (102, 102, 156)),
    ("fence", 13, 4, (190, 153, 153)),
    ("guard rail", 14, 255, (180, 165, 180)),
    ("bridge", 15, 255, (150, 100, 100)),
    ("tunnel", 16, 255, (150, 120, 90)),
    ("pole", 17, 5, (153, 153, 153)),
    ("polegroup", 18, 255, (153, 153, 153)),
    ("traffic light", 19, 6, (250, 170, 30)),
    ("traffic sign", 20, 7, (220, 220, 0)),
    ("vegetation", 21, 8, (107, 142, 35)),
    ("terrain", 22, 9, (152, 251, 152)),
    ("sky", 23, 10, (70, 130, 180)),
    ("person", 24, 11, (220, 20, 60)),
    ("rider", 25, 12, (255, 0, 0)),
    ("car", 26, 13, (0, 0, 142)),
    ("truck", 27, 14, (0, 0, 70)),
    ("bus", 28, 15, (0, 60, 100)),
    ("caravan", 29, 255, (0, 0, 90)),
    ("trailer", 30, 255, (0, 0, 110)),
    ("train", 31, 16, (0, 80, 100)),
    ("motorcycle", 32, 17, (0, 0, 230)),
    ("bicycle", 33, 18, (119, 11, 32)),
    ("license plate", -1, -1, (0, 0, 142)),
)

_TRAIN = sorted((t, name, colour) for name, _, t, colour in CITYSCAPES_LABELS if 0 <= t < IGNORE_INDEX)
#: the 19 evaluated classes in train-id order
CITYSCAPES_CLASSES: tuple[str, ...] = tuple(name for _, name, _ in _TRAIN)
_MAX_ID = max(i for _, i, _, _ in CITYSCAPES_LABELS)
_SPLITS = {"gtFine": ("train", "val", "test"), "gtCoarse": ("train", "train_extra", "val")}


def cityscapes_lut() -> np.ndarray:
    """``(256,)`` uint8 lookup label id → train id (255 for ids that are not evaluated)."""
    lut = np.full(256, IGNORE_INDEX, np.uint8)
    for _, label_id, train_id, _ in CITYSCAPES_LABELS:
        if label_id >= 0:
            lut[label_id] = train_id if train_id >= 0 else IGNORE_INDEX
    return lut


def cityscapes_palette() -> np.ndarray:
    """``(256, 3)`` uint8: the official colour of each train id, black for 255."""
    palette = voc_palette().copy()
    for t, _, colour in _TRAIN:
        palette[t] = colour
    palette[IGNORE_INDEX] = (0, 0, 0)
    return palette


class Cityscapes(SegmentationDataset):
    """``root/leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png`` with
    ``root/<gtFine|gtCoarse>/<split>/<city>/<city>_<seq>_<frame>_<gtFine|gtCoarse>_labelIds.png``.

    Args:
        root: the folder that holds ``leftImg8bit`` and ``gtFine``.
        split: ``train``, ``val`` or ``test`` (fine); ``train``, ``train_extra`` or ``val`` (coarse).
        annotations: ``"gtFine"`` (default) or ``"gtCoarse"``.
    """

    classes = CITYSCAPES_CLASSES

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        annotations: str = "gtFine",
        transforms: Callable[..., Any] | None = None,
    ) -> None:
        super().__init__(transforms)
        if annotations not in _SPLITS:
            raise DataError(f"Cityscapes annotations must be gtFine or gtCoarse, got {annotations!r}")
        if split not in _SPLITS[annotations]:
            raise DataError(f"Cityscapes {annotations} split must be {', '.join(_SPLITS[annotations])}, got {split!r}")
        self.root, self.split, self.annotations = Path(root), split, annotations
        images = require_dir(self.root / "leftImg8bit" / split, "Cityscapes leftImg8bit/" + split)
        labels = require_dir(self.root / annotations / split, f"Cityscapes {annotations}/{split}")
        self.image_paths = sorted(images.glob("*/*_leftImg8bit.png"))
        if not self.image_paths:
            raise DataError(f"{images}: no <city>/*_leftImg8bit.png images")
        self.mask_paths = [
            labels / p.parent.name / p.name.replace("_leftImg8bit.png", f"_{annotations}_labelIds.png")
            for p in self.image_paths
        ]
        require_files(self.mask_paths, "label")
        self._lut = cityscapes_lut()

    @property
    def palette(self) -> np.ndarray:
        return cityscapes_palette()

    def __len__(self) -> int:
        return len(self.image_paths)

    def describe(self, index: int) -> str:
        return str(self.mask_paths[index])

    def load(self, index: int) -> tuple[Any, Any]:
        image, turn = read_photo(self.image_paths[index])
        path = self.mask_paths[index]
        ids = read_label_png(path)
        if ids.size and int(ids.max()) > _MAX_ID:
            hint = " (a _labelTrainIds file?)" if int(ids.max()) == IGNORE_INDEX else ""
            raise DataError(f"{path}: values up to {int(ids.max())}, but label ids are 0..{_MAX_ID}{hint}")
        return to_sample(image, check_mask(self._lut[ids], image.shape, len(self.classes), path, turn))
