"""Helpers shared by the on-disk loaders: split lists, .mat reading, mask validation."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..files import read_text
from ..imageio import orient, read_rgb_oriented
from .base import IGNORE_INDEX

__all__ = [
    "align_mask",
    "bundled_split",
    "check_mask",
    "load_mat_field",
    "read_ids",
    "read_photo",
    "require_dir",
    "require_files",
]


def require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise DataError(f"{path}: {what} folder not found")
    return path


def require_files(paths: list[Path], what: str) -> None:
    """Raise one line naming the first three of ``paths`` that are not files (and how many are missing)."""
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        more = f" (and {len(missing) - 3} more)" if len(missing) > 3 else ""
        raise DataError(f"{len(missing)} {what} file(s) not found: {', '.join(missing[:3])}{more}")


def read_ids(path: Path) -> list[str]:
    """Non-empty stripped lines of a split list."""
    ids = [line.strip() for line in read_text(path, limit=1 << 28, what="split list").splitlines() if line.strip()]
    if not ids:
        raise DataError(f"{path}: split list is empty")
    return ids


def bundled_split(name: str) -> list[str]:
    """A split list shipped with fcnseg (from the reference release), e.g. ``"seg11valid"``."""
    text = resources.files("fcnseg.data").joinpath("splits", f"{name}.txt").read_text()
    return [line.strip() for line in text.splitlines() if line.strip()]


def load_mat_field(path: Path, *fields: str) -> np.ndarray:
    """``fields[0].fields[1]…`` of a MATLAB v5 file, e.g. ``("GTcls", "Segmentation")``."""
    import scipy.io  # here, not at import: it costs 0.24 s that only .mat readers need

    try:
        data = scipy.io.loadmat(path, simplify_cells=True)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except Exception as e:  # scipy raises ValueError/TypeError/MatReadError on corrupt files
        raise DataError(f"{path}: not a readable MATLAB .mat file ({type(e).__name__}: {e})") from None
    value = data
    for f in fields:
        if not isinstance(value, dict) or f not in value:
            raise DataError(f"{path}: field {'.'.join(fields)} not found")
        value = value[f]
    arr = np.asarray(value)
    if arr.ndim != 2:
        raise DataError(f"{path}: {'.'.join(fields)} must be a 2-D label map, got shape {arr.shape}")
    return arr


def read_photo(path: Path) -> tuple[np.ndarray, int]:
    """A dataset image as upright ``(H, W, 3)`` RGB and the EXIF orientation that turned it (1: none)."""
    return read_rgb_oriented(path)


def align_mask(mask: np.ndarray, image_shape: tuple[int, ...], orientation: int) -> np.ndarray:
    """The label map turned as EXIF ``orientation`` turned its image, when it is in the image's stored frame.

    :func:`~fcnseg.imageio.read_rgb` shows a photo upright, as its EXIF orientation says; the label map beside it
    has no such tag. A label map of the *stored* picture's size (pixel-aligned with the file, as COCO's and
    every array-made mask are) gets the same turn, so a square photo and its mask stay aligned. A label map that
    only fits the upright size (a 90° turn of a non-square photo) was drawn on the upright picture: kept as is.
    """
    if orientation == 1:
        return mask
    h, w = image_shape[:2]
    stored = (w, h) if orientation in (5, 6, 7, 8) else (h, w)
    return orient(mask, orientation) if tuple(mask.shape[:2]) == stored else mask


def check_mask(
    mask: np.ndarray, image_shape: tuple[int, ...], num_classes: int, path: Path, orientation: int = 1
) -> np.ndarray:
    """Raise unless the mask matches the image size and holds only classes < K or 255.

    ``orientation``: the EXIF orientation the image was turned by (:func:`read_photo`); see :func:`align_mask`.
    """
    mask = align_mask(mask, image_shape, orientation)
    if mask.shape[:2] != tuple(image_shape[:2]):
        raise DataError(
            f"{path}: mask is {mask.shape[1]}×{mask.shape[0]} but its image is {image_shape[1]}×{image_shape[0]}"
        )
    bad = np.unique(mask[(mask >= num_classes) & (mask != IGNORE_INDEX)])
    if bad.size:
        raise DataError(f"{path}: labels {bad[:10].tolist()} are outside 0..{num_classes - 1} (and 255 = ignore)")
    return mask
