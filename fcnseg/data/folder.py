"""A plain folder of images and masks, paired by file stem."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from ..io import _open, read_image
from ._common import check_mask, require_dir
from .base import IGNORE_INDEX, SegmentationDataset, to_sample, voc_palette

__all__ = ["IMAGE_SUFFIXES", "SegmentationFolder"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class SegmentationFolder(SegmentationDataset):
    """``images_dir/<stem>.<jpg|png|…>`` with ``masks_dir/<stem>.png``.

    Masks are indexed (palette) or greyscale PNGs holding class indices (255 = ignore), or RGB PNGs
    colour-coded with ``palette`` (VOC's by default, whose entry 255, (224, 224, 192), is the void colour).
    Every pairing problem (image without mask, mask without image, two images with one stem) is
    found up front and reported at once, naming the files.

    Args:
        images_dir, masks_dir: the two folders.
        classes: class names; by default ``class_0 … class_{K-1}`` with K from the largest label found.
        palette: ``(n, 3)`` uint8 colours for RGB masks and for pictures.
    """

    def __init__(
        self,
        images_dir: str | Path,
        masks_dir: str | Path,
        *,
        classes: Sequence[str] | None = None,
        palette: np.ndarray | None = None,
        transforms: Callable[..., Any] | None = None,
    ) -> None:
        super().__init__(transforms)
        self.images_dir = require_dir(Path(images_dir), "images")
        self.masks_dir = require_dir(Path(masks_dir), "masks")
        self._palette = voc_palette() if palette is None else np.asarray(palette, np.uint8)
        images = _by_stem(self.images_dir, IMAGE_SUFFIXES)
        masks = _by_stem(self.masks_dir, (".png",))
        problems = [
            f"{p[0].parent}: several files for {s!r}: {', '.join(x.name for x in p)}"
            for s, p in images.items()
            if len(p) > 1
        ]
        problems += [
            f"{images[s][0]}: no mask {self.masks_dir / (s + '.png')}" for s in sorted(set(images) - set(masks))
        ]
        problems += [
            f"{masks[s][0]}: no image for this mask in {self.images_dir}" for s in sorted(set(masks) - set(images))
        ]
        if not images and not problems:
            problems.append(f"{self.images_dir}: no images ({', '.join(IMAGE_SUFFIXES)})")
        if len(problems) == 1:
            raise DataError(problems[0])
        if problems:  # every problem at once, so a broken folder is fixed in one pass
            raise DataError(f"{len(problems)} problems pairing images and masks:\n  " + "\n  ".join(problems))
        self.stems = sorted(images)
        self.image_paths = [images[s][0] for s in self.stems]
        self.mask_paths = [masks[s][0] for s in self.stems]
        if classes is None:
            top = 0
            for p in self.mask_paths:
                m = self._read_mask(p)
                top = max(top, int(m.max(initial=0, where=m != IGNORE_INDEX)))
            classes = [f"class_{i}" for i in range(top + 1)]
        self.classes = tuple(classes)

    @property
    def palette(self) -> np.ndarray:
        return self._palette

    def __len__(self) -> int:
        return len(self.stems)

    def _read_mask(self, path: Path) -> np.ndarray:
        img = _open(path)
        if img.mode in ("P", "L"):
            return np.asarray(img)
        rgb = np.asarray(img.convert("RGB")).astype(np.int64)
        codes = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
        pal = self._palette.astype(np.int64)
        pal_codes = (pal[:, 0] << 16) | (pal[:, 1] << 8) | pal[:, 2]
        lut = {int(c): i for i, c in reversed(list(enumerate(pal_codes)))}  # lowest index wins a shared colour
        uniq, inverse = np.unique(codes, return_inverse=True)
        unknown = [u for u in uniq.tolist() if u not in lut]
        if unknown:
            colours = [((u >> 16) & 255, (u >> 8) & 255, u & 255) for u in unknown[:5]]
            raise DataError(f"{path}: colours {colours} are not in the palette; use an indexed PNG or pass palette=")
        return np.array([lut[u] for u in uniq.tolist()], np.uint8)[inverse].reshape(codes.shape)

    def load(self, index: int) -> tuple[Any, Any]:
        image = read_image(self.image_paths[index])
        path = self.mask_paths[index]
        return to_sample(image, check_mask(self._read_mask(path), image.shape, len(self.classes), path))


def _by_stem(folder: Path, suffixes: tuple[str, ...]) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in suffixes and not p.name.startswith("."):
            out.setdefault(p.stem, []).append(p)
    return out
