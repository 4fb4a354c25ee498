"""The VOC colour palette and the ignore label: numpy only, so that writing masks as pictures needs no dataset
reader (and no torchvision)."""

from __future__ import annotations

import numpy as np

__all__ = ["IGNORE_INDEX", "voc_palette"]

IGNORE_INDEX = 255


def voc_palette(n: int = 256) -> np.ndarray:
    """The PASCAL VOC colour map: ``(n, 3)`` uint8, class ``c``'s colour built from the bits of ``c``.

    Example:
        >>> voc_palette()[[0, 1, 15, 255]].tolist()
        [[0, 0, 0], [128, 0, 0], [192, 128, 128], [224, 224, 192]]
    """
    palette = np.zeros((n, 3), np.uint8)
    for c in range(n):
        r = g = b = 0
        cid = c
        for j in range(8):
            r |= ((cid >> 0) & 1) << (7 - j)
            g |= ((cid >> 1) & 1) << (7 - j)
            b |= ((cid >> 2) & 1) << (7 - j)
            cid >>= 3
        palette[c] = (r, g, b)
    return palette
