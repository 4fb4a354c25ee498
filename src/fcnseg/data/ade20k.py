"""ADE20K SceneParsing (Zhou et al. 2017), ``ADEChallengeData2016`` as the MIT challenge distributes it.

``annotations/<split>/ADE_*.png`` are 8-bit greyscale PNGs: 0 is "other" (not one of the 150 classes)
and 1…150 the classes. fcnseg maps 0 → 255 (ignored) and ``v`` → ``v − 1`` — mmsegmentation's
``reduce_zero_label`` — so a 150-output net predicts exactly the 150 classes. Class names are the first
name of each row of the challenge's ``objectInfo150.csv`` (as mmsegmentation spells them).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from ..io import read_label_png
from ._common import check_mask, read_photo, require_dir, require_files
from .base import IGNORE_INDEX, SegmentationDataset, to_sample

__all__ = ["ADE20K", "ADE20K_CLASSES"]

#: the 150 SceneParsing classes, train index 0…149 (label value 1…150)
ADE20K_CLASSES: tuple[str, ...] = (
    "wall",
    "building",
    "sky",
    "floor",
    "tree",
    "ceiling",
    "road",
    "bed",
    "windowpane",
    "grass",
    "cabinet",
    "sidewalk",
    "person",
    "earth",
    "door",
    "table",
    "mountain",
    "plant",
    "curtain",
    "chair",
    "car",
    "water",
    "painting",
    "sofa",
    "shelf",
    "house",
    "sea",
    "mirror",
    "rug",
    "field",
    "armchair",
    "seat",
    "fence",
    "desk",
    "rock",
    "wardrobe",
    "lamp",
    "bathtub",
    "railing",
    "cushion",
    "base",
    "box",
    "column",
    "signboard",
    "chest of drawers",
    "counter",
    "sand",
    "sink",
    "skyscraper",
    "fireplace",
    "refrigerator",
    "grandstand",
    "path",
    "stairs",
    "runway",
    "case",
    "pool table",
    "pillow",
    "screen door",
    "stairway",
    "river",
    "bridge",
    "bookcase",
    "blind",
    "coffee table",
    "toilet",
    "flower",
    "book",
    "hill",
    "bench",
    "countertop",
    "stove",
    "palm",
    "kitchen island",
    "computer",
    "swivel chair",
    "boat",
    "bar",
    "arcade machine",
    "hovel",
    "bus",
    "towel",
    "light",
    "truck",
    "tower",
    "chandelier",
    "awning",
    "streetlight",
    "booth",
    "television receiver",
    "airplane",
    "dirt track",
    "apparel",
    "pole",
    "land",
    "bannister",
    "escalator",
    "ottoman",
    "bottle",
    "buffet",
    "poster",
    "stage",
    "van",
    "ship",
    "fountain",
    "conveyer belt",
    "canopy",
    "washer",
    "plaything",
    "swimming pool",
    "stool",
    "barrel",
    "basket",
    "waterfall",
    "tent",
    "bag",
    "minibike",
    "cradle",
    "oven",
    "ball",
    "food",
    "step",
    "tank",
    "trade name",
    "microwave",
    "pot",
    "animal",
    "bicycle",
    "lake",
    "dishwasher",
    "screen",
    "blanket",
    "sculpture",
    "hood",
    "sconce",
    "vase",
    "traffic light",
    "tray",
    "ashcan",
    "fan",
    "pier",
    "crt screen",
    "plate",
    "monitor",
    "bulletin board",
    "shower",
    "radiator",
    "glass",
    "clock",
    "flag",
)

_SPLITS = {"training": "training", "validation": "validation", "train": "training", "val": "validation"}


def _reduce_zero_label() -> np.ndarray:
    lut = np.full(256, IGNORE_INDEX, np.uint8)
    lut[1 : len(ADE20K_CLASSES) + 1] = np.arange(len(ADE20K_CLASSES))
    return lut


class ADE20K(SegmentationDataset):
    """``ADEChallengeData2016/images/<split>/*.jpg`` with ``ADEChallengeData2016/annotations/<split>/*.png``.

    Args:
        root: ``ADEChallengeData2016`` itself or the folder that holds it.
        split: ``training`` or ``validation`` (``train`` / ``val`` accepted).
    """

    classes = ADE20K_CLASSES

    def __init__(
        self, root: str | Path, split: str = "training", *, transforms: Callable[..., Any] | None = None
    ) -> None:
        super().__init__(transforms)
        if split not in _SPLITS:
            raise DataError(f"ADE20K split must be training or validation (or train / val), got {split!r}")
        root = Path(root)
        base = root if (root / "images").is_dir() and (root / "annotations").is_dir() else root / "ADEChallengeData2016"
        require_dir(base, "ADEChallengeData2016")
        self.split = _SPLITS[split]
        images = require_dir(base / "images" / self.split, f"ADE20K images/{self.split}")
        labels = require_dir(base / "annotations" / self.split, f"ADE20K annotations/{self.split}")
        self.image_paths = sorted(images.glob("*.jpg"))
        if not self.image_paths:
            raise DataError(f"{images}: no .jpg images")
        self.mask_paths = [labels / f"{p.stem}.png" for p in self.image_paths]
        require_files(self.mask_paths, "annotation")
        self._lut = _reduce_zero_label()

    def __len__(self) -> int:
        return len(self.image_paths)

    def describe(self, index: int) -> str:
        return str(self.mask_paths[index])

    def load(self, index: int) -> tuple[Any, Any]:
        image, turn = read_photo(self.image_paths[index])
        path = self.mask_paths[index]
        raw = read_label_png(path)
        if raw.size and int(raw.max()) > len(ADE20K_CLASSES):
            raise DataError(f"{path}: values up to {int(raw.max())}, but ADE20K labels are 0 (other) and 1..150")
        return to_sample(image, check_mask(self._lut[raw], image.shape, len(self.classes), path, turn))
