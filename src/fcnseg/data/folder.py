"""A plain folder of images and masks, paired by file stem."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, DataWarning
from ..imageio import IMAGE_SUFFIXES
from ..io import _open
from ._common import check_mask, read_ids, read_photo, require_dir
from .base import IGNORE_INDEX, SegmentationDataset, to_sample, voc_palette
from .label_stats import LabelStats
from .labelmap import read_class_names, read_labelmap

__all__ = ["IMAGE_SUFFIXES", "SegmentationFolder", "open_folder"]


class SegmentationFolder(SegmentationDataset):
    """``images_dir/<stem>.<jpg|png|…>`` with ``masks_dir/<stem>.png``.

    Masks are indexed (palette) or greyscale PNGs holding class indices (255 = ignore), or RGB PNGs
    colour-coded with ``palette`` (VOC's by default, whose entry 255, (224, 224, 192), is the void colour).
    Every pairing problem (image without mask, mask without image, two images with one stem) is
    found up front and reported at once, naming the files.

    Args:
        images_dir, masks_dir: the two folders.
        classes: class names; by default ``class_0 … class_{K-1}`` with K from the largest label found.
            Deriving K reads every mask first, and refuses masks that would make it wrong: binary 0/255
            masks (255 is "ignore": one class would be left) and rare stray values far above the others
            (one stray pixel of 254 would make 255 classes). Given classes, a label ≥ K is an error.
        palette: ``(n, 3)`` uint8 colours for RGB masks (only these colours are accepted) and for pictures.
        binary: read 0/255 masks as background 0 / foreground 1 (255 is then not "ignore").
        ids: only these stems (a split list), in this order.
    """

    def __init__(
        self,
        images_dir: str | Path,
        masks_dir: str | Path,
        *,
        classes: Sequence[str] | None = None,
        palette: np.ndarray | None = None,
        binary: bool = False,
        ids: Sequence[str] | None = None,
        transforms: Callable[..., Any] | None = None,
    ) -> None:
        super().__init__(transforms)
        self.images_dir = require_dir(Path(images_dir), "images")
        self.masks_dir = require_dir(Path(masks_dir), "masks")
        self._mask_palette = voc_palette() if palette is None else np.asarray(palette, np.uint8).reshape(-1, 3)
        self._palette = voc_palette()
        self._palette[: min(256, len(self._mask_palette))] = self._mask_palette[:256]
        self.binary = bool(binary)
        images = _by_stem(self.images_dir, IMAGE_SUFFIXES)
        masks = _by_stem(self.masks_dir, (".png",))
        if ids is not None:
            listed = set(ids)
            problems = [f"{self.images_dir}: no image for listed id {i!r}" for i in ids if i not in images]
            if problems:
                raise DataError(
                    problems[0]
                    if len(problems) == 1
                    else f"{len(problems)} listed ids have no image; first: {problems[0]}"
                )
            images = {s: p for s, p in images.items() if s in listed}
            masks = {s: p for s, p in masks.items() if s in listed}
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
            raise DataError(f"{len(problems)} problems pairing images and masks:", details=problems)
        self.stems = sorted(images) if ids is None else list(dict.fromkeys(ids))
        self.image_paths = [images[s][0] for s in self.stems]
        self.mask_paths = [masks[s][0] for s in self.stems]
        self.classes = tuple(classes) if classes is not None else self._default_classes()
        if classes is not None and not self.binary:
            self._warn_if_binary()

    def _default_classes(self) -> tuple[str, ...]:
        """``class_0 … class_{K-1}``, K from the largest label, refusing masks that would make K wrong."""
        stats = LabelStats()
        for p in self.mask_paths:
            stats.add(self._read_mask(p), str(p))
        if stats.binary_problem():
            raise DataError(f"{self.masks_dir}: {stats.binary_problem()}")
        if stats.stray_problem():
            raise DataError(f"{self.masks_dir}: {stats.stray_problem()}; fix the masks, or pass classes=")
        top = max([v for v in stats.values if v != IGNORE_INDEX], default=0)
        return tuple(f"class_{i}" for i in range(top + 1))

    def _warn_if_binary(self, sample: int = 16) -> None:
        """With the classes given, look at up to ``sample`` masks (spread out) for the 0/255 trap; warn if found."""
        stats = LabelStats()
        for p in self.mask_paths[:: max(1, len(self.mask_paths) // sample)][:sample]:
            try:
                stats.add(self._read_mask(p), str(p))
            except DataError:
                continue  # reported when the sample is loaded (data check lists every such file)
        problem = stats.binary_problem()
        if problem:
            warnings.warn(f"{self.masks_dir}: {problem}", DataWarning, stacklevel=3)

    @property
    def palette(self) -> np.ndarray:
        return self._palette

    def __len__(self) -> int:
        return len(self.stems)

    def describe(self, index: int) -> str:
        return str(self.mask_paths[index])

    def _read_mask(self, path: Path) -> np.ndarray:
        mask = self._decode_mask(path)
        if self.binary:
            bad = np.unique(mask[(mask != 0) & (mask != IGNORE_INDEX)])
            if bad.size:
                raise DataError(f"{path}: binary=True, but the mask holds values {bad[:10].tolist()} besides 0 and 255")
            mask = np.where(mask == IGNORE_INDEX, 1, 0).astype(np.uint8)
        return mask

    def _decode_mask(self, path: Path) -> np.ndarray:
        img = _open(path)
        if img.mode in ("P", "L"):
            return np.asarray(img)
        rgb = np.asarray(img.convert("RGB")).astype(np.int64)
        codes = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
        pal = self._mask_palette.astype(np.int64)
        pal_codes = (pal[:, 0] << 16) | (pal[:, 1] << 8) | pal[:, 2]
        lut = {int(c): i for i, c in reversed(list(enumerate(pal_codes)))}  # lowest index wins a shared colour
        uniq, inverse = np.unique(codes, return_inverse=True)
        unknown = [u for u in uniq.tolist() if u not in lut]
        if unknown:
            colours = [((u >> 16) & 255, (u >> 8) & 255, u & 255) for u in unknown[:5]]
            raise DataError(f"{path}: colours {colours} are not in the palette; use an indexed PNG or pass palette=")
        return np.array([lut[u] for u in uniq.tolist()], np.uint8)[inverse].reshape(codes.shape)

    def load(self, index: int) -> tuple[Any, Any]:
        image, turn = read_photo(self.image_paths[index])
        path = self.mask_paths[index]
        return to_sample(image, check_mask(self._read_mask(path), image.shape, len(self.classes), path, turn))


def _by_stem(folder: Path, suffixes: tuple[str, ...]) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in suffixes and not p.name.startswith("."):
            out.setdefault(p.stem, []).append(p)
    return out


def open_folder(root: str | Path, split: str | None = None, **kw: Any) -> SegmentationFolder:
    """The ``folder`` dataset: ``root[/split]/{images,masks}``, or a CVAT "Segmentation mask 1.1" export.

    A CVAT export (``labelmap.txt``, ``JPEGImages/``, ``SegmentationClass/``, ``ImageSets/Segmentation/*.txt``)
    takes its classes and colours from ``labelmap.txt`` and its ids from the split list ``split``
    (CVAT names the subset ``default`` unless told otherwise). A plain folder takes its class names from a
    ``class_names.txt`` beside ``images/`` (as ``fcnseg data import labelme`` writes) unless ``classes`` is given.
    """
    root = Path(root)
    base = root / split if split and (root / split).is_dir() else root
    if (base / "labelmap.txt").is_file() and (base / "SegmentationClass").is_dir():
        names, colours = read_labelmap(base / "labelmap.txt")
        kw.setdefault("classes", names)
        kw.setdefault("palette", colours)
        lists = base / "ImageSets" / "Segmentation"
        available = sorted(p.stem for p in lists.glob("*.txt"))
        if split and (lists / f"{split}.txt").is_file():
            kw.setdefault("ids", read_ids(lists / f"{split}.txt"))
        elif split and available:
            raise DataError(f"{lists}: no split {split!r}; this export has {', '.join(available)}")
        images = base / "JPEGImages"
        if not images.is_dir():
            raise DataError(f"{images}: images folder not found (export from CVAT with 'Save images' ticked)")
        return SegmentationFolder(images, base / "SegmentationClass", **kw)
    if "classes" not in kw and (base / "class_names.txt").is_file():
        kw["classes"] = read_class_names(base / "class_names.txt")
    return SegmentationFolder(base / "images", base / "masks", **kw)
