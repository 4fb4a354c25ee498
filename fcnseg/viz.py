"""Pictures of segmentations: colourised masks, overlays, side-by-side grids with a class legend."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch

from .data.base import IGNORE_INDEX, voc_palette
from .io import atomic_write

__all__ = ["colorize", "overlay", "save_confusion", "save_grid"]


def colorize(mask: np.ndarray, palette: np.ndarray | None = None) -> np.ndarray:
    """``(H, W)`` class indices → ``(H, W, 3)`` uint8 colours (255 = void gets the palette's entry 255)."""
    pal = voc_palette() if palette is None else np.asarray(palette, np.uint8)
    if len(pal) < 256:
        pal = np.concatenate([pal, voc_palette()[len(pal) :]])
    return pal[np.asarray(mask, np.int64).clip(0, 255)]


def overlay(image: np.ndarray, mask: np.ndarray, palette: np.ndarray | None = None, alpha: float = 0.5) -> np.ndarray:
    """Blend the colourised mask over the ``(H, W, 3)`` uint8 image; background (0) and void stay clear."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    colour = colorize(mask, palette).astype(np.float32)
    img = image.astype(np.float32)
    m = ((mask != 0) & (mask != IGNORE_INDEX))[..., None]
    return np.where(m, (1 - alpha) * img + alpha * colour, img).round().astype(np.uint8)


def save_grid(
    path: str | Path,
    rows: Sequence[Sequence[np.ndarray]],
    *,
    titles: Sequence[str],
    classes: Sequence[str],
    palette: np.ndarray | None = None,
) -> Path:
    """A figure with one row per image: the image, then masks (truth, predictions…), and a class legend.

    ``rows[i][0]`` is an ``(H, W, 3)`` image, the rest ``(H, W)`` masks. Written atomically as PNG.
    """
    n_rows, n_cols = len(rows), len(titles)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(2.2 * n_cols, 2.2 * n_rows + 0.8), squeeze=False)
    used: set[int] = set()
    for r, row in enumerate(rows):
        for c, item in enumerate(row):
            ax = axes[r][c]
            if item.ndim == 2:
                used.update(int(v) for v in np.unique(item) if v != IGNORE_INDEX)
                item = colorize(item, palette)
            ax.imshow(item, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(titles[c], fontsize=9)
    pal = colorize(np.arange(256), palette)
    handles = [Patch(color=pal[i] / 255, label=classes[i]) for i in sorted(used) if i < len(classes)]
    fig.legend(handles=handles, loc="lower center", ncol=min(6, max(1, len(handles))), fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    path = Path(path)
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)
    return path


def save_confusion(path: str | Path, hist: np.ndarray, classes: Sequence[str]) -> Path:
    """The row-normalised confusion matrix (true × predicted) as a PNG, written atomically."""
    norm = hist / np.maximum(hist.sum(1, keepdims=True), 1)
    n = len(hist)
    fig, ax = plt.subplots(figsize=(1 + 0.35 * n, 1 + 0.35 * n))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    names = [classes[i] if i < len(classes) else str(i) for i in range(n)]
    ax.set_xticks(range(n), names, rotation=90, fontsize=7)
    ax.set_yticks(range(n), names, fontsize=7)
    ax.set(xlabel="predicted", ylabel="true")
    fig.tight_layout()
    path = Path(path)
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)
    return path
