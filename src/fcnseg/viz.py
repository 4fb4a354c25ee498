"""Pictures of segmentations: colourised masks, overlays, side-by-side grids with a class legend, confusion.

Pictures are for reading at a glance: classes get colours far apart (:func:`palette_for`; VOC's own
palette for VOC's classes, by convention), void pixels a colour of their own that the legend names, and
the legend is laid out to fit inside the figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .data.classes import VOC_CLASSES
from .data.palette import IGNORE_INDEX, voc_palette
from .io import atomic_write

if TYPE_CHECKING:  # matplotlib is imported where a figure is drawn: masks and overlays do not need its 0.4 s
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

__all__ = [
    "DISTINCT_COLOURS",
    "VOID_LABEL",
    "colorize",
    "confusion_figure",
    "figure",
    "grid_figure",
    "overlay",
    "palette_for",
    "save_confusion",
    "save_grid",
]

#: background black, then 20 colours chosen to be far apart (Sasha Trubetskoy's list), most distinct first
DISTINCT_COLOURS = np.array(
    [
        (0, 0, 0),
        (230, 25, 75),
        (60, 180, 75),
        (255, 225, 25),
        (0, 130, 200),
        (245, 130, 48),
        (145, 30, 180),
        (70, 240, 240),
        (240, 50, 230),
        (210, 245, 60),
        (250, 190, 212),
        (0, 128, 128),
        (220, 190, 255),
        (170, 110, 40),
        (255, 250, 200),
        (128, 0, 0),
        (170, 255, 195),
        (128, 128, 0),
        (255, 215, 180),
        (0, 0, 128),
        (128, 128, 128),
    ],
    np.uint8,
)
#: what the legend calls label 255
VOID_LABEL = "void (not scored)"
_VOID_DISTINCT = (255, 255, 255)


def figure(figsize: tuple[float, float]) -> Figure:
    """A figure drawn by Agg, whatever matplotlib backend the process uses (fcnseg never switches it)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def palette_for(classes: Sequence[str]) -> np.ndarray:
    """A 256-entry palette for pictures of ``classes``: VOC's for VOC's classes, else colours far apart.

    Beyond 21 classes the VOC palette's bit pattern continues (distinct, though not far apart). Entry 255
    (void) is VOC's cream for VOC, white otherwise; :func:`save_grid` names it in the legend either way.
    """
    pal = voc_palette().copy()
    if tuple(classes) == tuple(VOC_CLASSES):
        return pal
    pal[: len(DISTINCT_COLOURS)] = DISTINCT_COLOURS
    pal[IGNORE_INDEX] = _VOID_DISTINCT
    return pal


def colorize(mask: np.ndarray, palette: np.ndarray | None = None) -> np.ndarray:
    """``(H, W)`` class indices → ``(H, W, 3)`` uint8 colours (255 = void gets the palette's entry 255; classes
    beyond 255, of models with more than 256 classes, reuse the colours 1..254 rather than look void)."""
    pal = voc_palette() if palette is None else np.asarray(palette, np.uint8)
    if len(pal) < 256:
        pal = np.concatenate([pal, voc_palette()[len(pal) :]])
    idx = np.asarray(mask, np.int64)
    idx = np.where(idx > 255, 1 + (idx - 1) % 254, idx.clip(0, 255))  # classes beyond 255: colours 1..254 again
    return pal[idx]


def overlay(image: np.ndarray, mask: np.ndarray, palette: np.ndarray | None = None, alpha: float = 0.5) -> np.ndarray:
    """Blend the colourised mask over the ``(H, W, 3)`` uint8 image; background (0) and void stay clear."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    colour = colorize(mask, palette).astype(np.float32)
    img = image.astype(np.float32)
    m = ((mask != 0) & (mask != IGNORE_INDEX))[..., None]
    return np.where(m, (1 - alpha) * img + alpha * colour, img).round().astype(np.uint8)


def grid_figure(
    rows: Sequence[Sequence[np.ndarray]],
    *,
    titles: Sequence[str],
    classes: Sequence[str],
    palette: np.ndarray | None = None,
) -> Figure:
    """The figure :func:`save_grid` writes (for callers that want to inspect or extend it)."""
    pal = palette_for(classes) if palette is None else colorize(np.arange(256), palette)
    n_rows, n_cols = len(rows), len(titles)
    fig = figure((2.2 * max(n_cols, 2), 2.2 * n_rows + 0.9))
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    used: set[int] = set()
    for r, row in enumerate(rows):
        for c, item in enumerate(row):
            ax = axes[r][c]
            if item.ndim == 2:
                used.update(int(v) for v in np.unique(item))
                item = colorize(item, pal)
            ax.imshow(item, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(titles[c], fontsize=9)
    names = {i: classes[i] if i < len(classes) else f"class {i}" for i in sorted(used) if i != IGNORE_INDEX}
    if IGNORE_INDEX in used:
        names[IGNORE_INDEX] = VOID_LABEL
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=pal[i] / 255, edgecolor="0.4", linewidth=0.5, label=n) for i, n in names.items()]
    _fit_legend(fig, handles)
    return fig


def _fit_legend(fig: Figure, handles: list[Patch]) -> None:
    """A legend below the panels, with as many columns as fit inside the figure's width (drawn to check)."""
    if not handles:
        fig.tight_layout()
        return
    for ncol in range(min(len(handles), 8), 0, -1):
        legend = fig.legend(
            handles=handles,
            loc="lower center",
            ncol=ncol,
            fontsize=7,
            frameon=False,
            handlelength=1.2,
            columnspacing=1.0,
        )
        fig.canvas.draw()
        box = legend.get_window_extent()
        if (box.x0 >= 0 and box.x1 <= fig.bbox.width) or ncol == 1:
            break
        legend.remove()
    bottom = min(0.45, (box.height + 6) / fig.bbox.height)
    fig.tight_layout(rect=(0, bottom, 1, 1))


def save_grid(
    path: str | Path,
    rows: Sequence[Sequence[np.ndarray]],
    *,
    titles: Sequence[str],
    classes: Sequence[str],
    palette: np.ndarray | None = None,
) -> Path:
    """A figure with one row per image: the image, then masks (truth, predictions…), and a class legend.

    ``rows[i][0]`` is an ``(H, W, 3)`` image, the rest ``(H, W)`` masks. The legend names every label
    drawn, void included; ``palette`` defaults to :func:`palette_for` ``(classes)``. Written atomically.
    """
    return _save(grid_figure(rows, titles=titles, classes=classes, palette=palette), path)


def confusion_figure(hist: np.ndarray, classes: Sequence[str], *, counts: bool | None = None) -> Figure:
    """Row-normalised confusion (true × predicted), a colour bar, and each cell's pixel count.

    ``counts`` (default: up to 25 classes) writes the count in every non-empty cell, in k/M units.
    """
    hist = np.asarray(hist)
    norm = hist / np.maximum(hist.sum(1, keepdims=True), 1)
    n = len(hist)
    side = 2.2 + 0.5 * n
    fig = figure((side + 1.2, side))
    ax = fig.subplots()
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    bar.set_label("share of the true class's pixels")
    names = [classes[i] if i < len(classes) else str(i) for i in range(n)]
    ax.set_xticks(range(n), names, rotation=90, fontsize=7)
    ax.set_yticks(range(n), names, fontsize=7)
    ax.set(xlabel="predicted class", ylabel="true class")
    ax.set_title(f"confusion over {int(hist.sum()):,} scored pixels (numbers: pixel counts)", fontsize=8)
    if counts is None:
        counts = n <= 25
    if counts:
        for i in range(n):
            for j in range(n):
                if hist[i, j]:
                    ax.text(
                        j,
                        i,
                        _compact(int(hist[i, j])),
                        ha="center",
                        va="center",
                        fontsize=5.5,
                        color="white" if norm[i, j] > 0.5 else "black",
                    )
    fig.tight_layout()
    return fig


def _compact(v: int) -> str:
    for unit, scale in (("M", 1_000_000), ("k", 1_000)):
        if v >= scale:
            return f"{v / scale:.3g}{unit}"
    return str(v)


def save_confusion(path: str | Path, hist: np.ndarray, classes: Sequence[str]) -> Path:
    """:func:`confusion_figure` as a PNG, written atomically."""
    return _save(confusion_figure(hist, classes), path)


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=100)
    return path
