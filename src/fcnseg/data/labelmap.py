"""Class lists stored beside a dataset: CVAT / Datumaro ``labelmap.txt`` and labelme's ``class_names.txt``.

``labelmap.txt`` is what CVAT's "Segmentation mask 1.1" export (Pascal VOC layout) writes: one
``name:r,g,b:parts:actions`` line per class, background first, comment lines starting with ``#``.
Its ``SegmentationClass/*.png`` masks are RGB images in exactly those colours; a line's position is
its class index.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError
from ..files import read_text

__all__ = ["read_class_names", "read_labelmap"]

#: a label map or class list is a few kB of text
MAX_LIST_BYTES = 1 << 20


def read_labelmap(path: str | Path) -> tuple[list[str], np.ndarray]:
    """Class names and their ``(K, 3)`` uint8 colours from a CVAT/Datumaro ``labelmap.txt``."""
    path = Path(path)
    lines = read_text(path, limit=MAX_LIST_BYTES, what="label map").splitlines()
    names: list[str] = []
    colours: list[tuple[int, ...]] = []
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split(":")
        try:
            rgb = tuple(int(c) for c in fields[1].split(","))
        except (IndexError, ValueError):
            rgb = ()
        if len(rgb) != 3 or not all(0 <= c <= 255 for c in rgb) or not fields[0].strip():
            raise DataError(f"{path}:{n}: expected 'name:r,g,b:parts:actions', got {line.strip()!r}")
        if rgb in colours:
            raise DataError(f"{path}:{n}: colour {rgb} of {fields[0]!r} is already {names[colours.index(rgb)]!r}")
        names.append(fields[0].strip())
        colours.append(rgb)
    if not names:
        raise DataError(f"{path}: no 'name:r,g,b::' lines")
    if len(names) > 255:
        raise DataError(f"{path}: {len(names)} classes; at most 255 fit in a mask (255 = ignore)")
    return names, np.array(colours, np.uint8)


def read_class_names(path: str | Path) -> list[str]:
    """Non-empty lines of a ``class_names.txt`` (labelme2voc's: background first, one class a line)."""
    path = Path(path)
    names = [line.strip() for line in read_text(path, limit=MAX_LIST_BYTES, what="class list").splitlines()]
    names = [n for n in names if n]
    if not names:
        raise DataError(f"{path}: class list is empty")
    return names
