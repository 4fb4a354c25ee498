"""Validate a dataset on disk: every sample readable, labels in range, sizes matching; class frequencies.

Beyond errors, :func:`check_dataset` warns of the classic traps (:mod:`fcnseg.data.label_stats`):
binary 0/255 masks, rare stray values, classes with no pixels.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from torch import Tensor

from ..errors import DataError
from ..io import atomic_write, write_palette_png
from .base import IGNORE_INDEX, SegmentationDataset, voc_palette
from .label_stats import LabelStats
from .synthetic import SHAPE_CLASSES, SyntheticShapes

__all__ = ["CheckReport", "check_dataset", "class_names", "write_folder_layout", "write_voc_layout"]


@dataclass
class CheckReport:
    """Result of :func:`check_dataset`: sample count, problems and warnings (one line each), pixels per class."""

    samples: int = 0
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    class_pixels: dict[str, np.ndarray] = field(default_factory=dict)
    ignored_pixels: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def frequencies(self, task: str = "") -> np.ndarray:
        counts = self.class_pixels[task].astype(np.float64)
        return counts / max(1.0, counts.sum())


def _masks(mask: Tensor | dict[str, Tensor]) -> Iterable[tuple[str, Tensor]]:
    return mask.items() if isinstance(mask, dict) else [("", mask)]


def class_names(ds: SegmentationDataset) -> tuple[str, ...]:
    """The names to show for ``ds``'s classes: the shape names for SyntheticShapes written in VOC layout."""
    from .voc import VOCSegmentation

    ids = getattr(ds, "ids", [])
    if isinstance(ds, VOCSegmentation) and ids and all(str(i).startswith("synth_") for i in ids):
        return SHAPE_CLASSES  # write_voc_layout's files: VOC's folders, the synthetic set's classes
    return tuple(ds.classes)


def check_dataset(ds: SegmentationDataset) -> CheckReport:
    """Load every sample (without transforms), collecting every problem instead of stopping at the first."""
    report = CheckReport()
    stats = LabelStats()
    for i in range(len(ds)):
        try:
            _, mask = ds.load(i)
        except DataError as e:
            report.problems.append(str(e))
            continue
        report.samples += 1
        for task, m in _masks(mask):
            first = task == next(iter(ds.head_classes), "")  # the head ds.classes names
            if first:
                stats.add(m.numpy(), ds.describe(i))
            labelled = m[m != IGNORE_INDEX].numpy().ravel()
            counts = np.bincount(labelled, minlength=len(class_names(ds) if first else ds.head_classes.get(task, ())))
            prev = report.class_pixels.get(task)
            if prev is not None and len(prev) < len(counts):
                prev = np.pad(prev, (0, len(counts) - len(prev)))
            report.class_pixels[task] = counts if prev is None else prev + np.pad(counts, (0, len(prev) - len(counts)))
            report.ignored_pixels += int((m == IGNORE_INDEX).sum())
    if len(ds) == 0:
        report.problems.append("the dataset has no samples")
    report.warnings = stats.warnings(class_names(ds))
    return report


def write_voc_layout(
    out: str | Path, *, n: int = 100, size: int = 128, seed: int = 0, val_fraction: float = 0.2
) -> Path:
    """Write SyntheticShapes as ``out/VOCdevkit/VOC2012`` (JPEG images, palette PNG labels, split lists)."""
    base = Path(out) / "VOCdevkit" / "VOC2012"
    n_val = max(1, round(n * val_fraction)) if n > 1 else 0
    ids: dict[str, list[str]] = {"train": [], "val": []}
    for split, count in (("train", n - n_val), ("val", n_val)):
        ds = SyntheticShapes(max(count, 1), size, split, seed)
        for i in range(count):
            image, mask, _ = ds.generate(i)
            sid = f"synth_{split}_{i:06d}"
            with atomic_write(base / "JPEGImages" / f"{sid}.jpg") as f:
                Image.fromarray(image).save(f, format="JPEG", quality=95)
            write_palette_png(base / "SegmentationClass" / f"{sid}.png", mask, voc_palette())
            ids[split].append(sid)
    lists = base / "ImageSets" / "Segmentation"
    for split, names in (*ids.items(), ("trainval", ids["train"] + ids["val"])):
        with atomic_write(lists / f"{split}.txt", "w") as f:
            f.write("".join(f"{s}\n" for s in names))
    return base


def write_folder_layout(
    out: str | Path, *, n: int = 100, size: int = 128, seed: int = 0, val_fraction: float = 0.2
) -> Path:
    """Write SyntheticShapes as a plain folder dataset: ``out/{train,val}/{images/*.jpg,masks/*.png}``.

    This is the layout of the ``folder`` dataset ("your own data"): masks are palette PNGs of class
    indices, 255 where the label is void.
    """
    base = Path(out)
    n_val = max(1, round(n * val_fraction)) if n > 1 else 0
    for split, count in (("train", n - n_val), ("val", n_val)):
        ds = SyntheticShapes(max(count, 1), size, split, seed)
        for i in range(count):
            image, mask, _ = ds.generate(i)
            with atomic_write(base / split / "images" / f"{split}_{i:06d}.jpg") as f:
                Image.fromarray(image).save(f, format="JPEG", quality=95)
            write_palette_png(base / split / "masks" / f"{split}_{i:06d}.png", mask, voc_palette())
    return base
