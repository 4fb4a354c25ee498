"""Sliding-window inference for images too large to score whole, with memory bounded by the tile.

Tiles of ``tile × tile`` pixels overlap by ``overlap``; each tile's class probabilities are weighted by
a ramp that falls towards the tile's edges (where its context is cut) and blended. Tiles are
processed one row of tiles at a time, and rows of the image are turned into labels as soon as no
later tile can touch them, so the accumulator holds ``K × tile × W`` values, never ``K × H × W``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from ..errors import ConfigError

__all__ = ["label_map", "tile_starts", "tiled_labels"]


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets covering ``[0, length)`` with stride ``tile − overlap``; the last tile ends at ``length``.

    Example:
        >>> tile_starts(10, 4, 1)
        [0, 3, 6]
        >>> tile_starts(3, 4, 1)
        [0]
    """
    if tile <= overlap or overlap < 0:
        raise ConfigError(f"tile must be larger than overlap >= 0, got tile={tile}, overlap={overlap}")
    if length <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    return [*starts, length - tile]


def _ramp(n: int, overlap: int) -> Tensor:
    i = torch.arange(n, dtype=torch.float32)
    edge = torch.minimum(i + 1, n - i)
    return (edge / (overlap + 1)).clamp(max=1.0) if overlap else torch.ones(n)


def label_map(scores: torch.Tensor, dim: int) -> np.ndarray:
    """The argmax of ``scores`` over ``dim`` (the class axis) as a NumPy label map that holds every class: uint8
    for up to 256 classes, uint16 up to 65536, int32 beyond. Never wrapped (class 299 stays 299)."""
    k = scores.shape[dim]
    labels = scores.argmax(dim)
    if k <= 256:
        return labels.to(torch.uint8).cpu().numpy()
    return labels.to(torch.int32).cpu().numpy().astype(np.uint16 if k <= 65536 else np.int32)


def tiled_labels(
    probs_fn: Callable[[np.ndarray], Tensor], image: np.ndarray, *, tile: int = 512, overlap: int = 128
) -> np.ndarray:
    """Labels ``(H, W)`` of an ``(H, W, 3)`` image, scored tile by tile (dtype as :func:`label_map`'s).

    Args:
        probs_fn: maps an ``(h, w, 3)`` uint8 crop to ``(K, h, w)`` class probabilities.
        tile, overlap: window size and overlap in pixels.
    """
    height, width = image.shape[:2]
    ys, xs = tile_starts(height, tile, overlap), tile_starts(width, tile, overlap)
    labels: np.ndarray | None = None
    acc: Tensor | None = None  # (K, rows, W) for image rows [base, base + rows)
    weight: Tensor | None = None
    base = 0
    for r, y0 in enumerate(ys):
        th = min(tile, height - y0)
        rows_needed = y0 + th - base
        for x0 in xs:
            tw = min(tile, width - x0)
            p = probs_fn(image[y0 : y0 + th, x0 : x0 + tw])  # (K, th, tw)
            w = _ramp(th, overlap)[:, None] * _ramp(tw, overlap)[None, :]
            if acc is None:
                acc = torch.zeros(p.shape[0], rows_needed, width)
                weight = torch.zeros(rows_needed, width)
            elif acc.shape[1] < rows_needed:
                grow = rows_needed - acc.shape[1]
                acc = torch.cat([acc, torch.zeros(acc.shape[0], grow, width)], 1)
                weight = torch.cat([weight, torch.zeros(grow, width)], 0)  # type: ignore[list-item]
            acc[:, y0 - base : y0 - base + th, x0 : x0 + tw] += p.float().cpu() * w
            weight[y0 - base : y0 - base + th, x0 : x0 + tw] += w  # type: ignore[index]
        final = ys[r + 1] if r + 1 < len(ys) else height  # rows above the next tile row are complete
        done = final - base
        assert acc is not None and weight is not None
        part = label_map(acc[:, :done], 0)
        if labels is None:
            labels = np.zeros((height, width), part.dtype)
        labels[base:final] = part
        acc, weight, base = acc[:, done:].clone(), weight[done:].clone(), final
    assert labels is not None
    return labels
