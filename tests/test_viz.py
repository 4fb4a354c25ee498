"""Colourised masks, overlays with adjustable opacity, grids with a legend."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fcnseg.data.base import voc_palette
from fcnseg.viz import colorize, overlay, save_grid


def test_colorize_uses_the_palette_and_void_colour() -> None:
    mask = np.array([[0, 1], [15, 255]])
    rgb = colorize(mask)
    assert rgb.shape == (2, 2, 3) and rgb.dtype == np.uint8
    assert (
        rgb[0, 1].tolist() == [128, 0, 0]
        and rgb[1, 0].tolist() == [192, 128, 128]
        and rgb[1, 1].tolist() == [224, 224, 192]
    )
    custom = colorize(np.array([[1]]), palette=np.array([[0, 0, 0], [1, 2, 3]], np.uint8))
    assert custom[0, 0].tolist() == [1, 2, 3]


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_overlay_blends_objects_and_leaves_background_and_void_clear(alpha: float) -> None:
    image = np.full((2, 2, 3), 100, np.uint8)
    mask = np.array([[0, 1], [255, 1]])
    out = overlay(image, mask, alpha=alpha)
    assert out[0, 0].tolist() == [100, 100, 100] and out[1, 0].tolist() == [100, 100, 100]
    expected = np.round((1 - alpha) * 100 + alpha * voc_palette()[1]).astype(np.uint8)
    assert out[0, 1].tolist() == expected.tolist()
    with pytest.raises(ValueError, match="alpha"):
        overlay(image, mask, alpha=1.5)


def test_grid_png(tmp_path) -> None:
    image = np.zeros((16, 16, 3), np.uint8)
    truth = np.zeros((16, 16), np.int64)
    truth[4:8, 4:8] = 2
    path = save_grid(
        tmp_path / "g.png",
        [[image, truth, truth], [image, truth, np.zeros_like(truth)]],
        titles=["image", "truth", "prediction"],
        classes=["background", "a", "b"],
    )
    img = Image.open(path)
    assert img.format == "PNG" and img.size[0] > 200 and img.size[1] > 200


def _all_labels_mask(size: int = 54) -> np.ndarray:
    """A mask with every synthetic class in a stripe and a void border: what the demo's grid draws."""
    from fcnseg.data import SyntheticShapes

    mask = np.repeat(np.arange(len(SyntheticShapes.classes)), -(-size // len(SyntheticShapes.classes)))[:size]
    mask = np.tile(mask, (size, 1)).astype(np.int64)
    mask[:, ::7] = 255
    return mask


@pytest.mark.parametrize("n_cols", [2, 5])  # predict --grid (image | prediction) and the demo's five columns
def test_grid_legend_lies_inside_the_figure_and_names_void(n_cols: int) -> None:
    from fcnseg.data import SyntheticShapes
    from fcnseg.viz import VOID_LABEL, grid_figure

    image, mask = np.zeros((54, 54, 3), np.uint8), _all_labels_mask()
    fig = grid_figure(
        [[image, *[mask] * (n_cols - 1)]] * 2, titles=["image", *["m"] * (n_cols - 1)], classes=SyntheticShapes.classes
    )
    fig.canvas.draw()
    (legend,) = fig.legends
    box, page = legend.get_window_extent(), fig.bbox
    assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1
    names = [t.get_text() for t in legend.get_texts()]
    assert names == [*SyntheticShapes.classes, VOID_LABEL]
    for ax in fig.axes:  # the legend overlaps no panel
        assert not box.overlaps(ax.get_window_extent())


def test_picture_palette_colours_are_far_apart_and_void_has_its_own() -> None:
    from fcnseg.data import SyntheticShapes
    from fcnseg.data.classes import VOC_CLASSES
    from fcnseg.viz import palette_for

    pal = palette_for(SyntheticShapes.classes).astype(np.int64)
    used = np.concatenate([pal[: len(SyntheticShapes.classes)], pal[255:256]])
    dist = np.sqrt(((used[:, None] - used[None]) ** 2).sum(-1))
    assert dist[~np.eye(len(used), dtype=bool)].min() > 95  # VOC's first nine: 64 apart (128,0,0 vs 64,0,0)
    assert (palette_for(VOC_CLASSES) == voc_palette()).all()  # VOC keeps its own, by convention


def test_confusion_picture_has_a_colour_bar_and_counts() -> None:
    from fcnseg.viz import confusion_figure

    hist = np.array([[1500, 20, 0], [3, 250_000, 7], [0, 0, 12]])
    fig = confusion_figure(hist, ["background", "a", "b"])
    image_ax, bar_ax = fig.axes
    assert "share" in bar_ax.get_ylabel()
    texts = {t.get_text() for t in image_ax.texts}
    assert {"1.5k", "20", "3", "250k", "7", "12"} == texts  # every non-empty cell, none for zeros
    assert image_ax.get_xlabel() == "predicted class" and image_ax.get_ylabel() == "true class"


def test_curves_have_labelled_axes_with_units(tmp_path) -> None:
    from fcnseg.train.logging import curves_figure

    (tmp_path / "log.csv").write_text(
        "step,loss,lr,images_per_s,pixel_accuracy,mean_accuracy,mean_iu,fw_iu\n"
        "10,2.0,0.1,5,,,,\n20,1.0,0.1,5,0.9,0.5,0.4,0.8\n"
    )
    loss_ax, miu_ax = curves_figure(tmp_path, "ce", True).axes
    assert loss_ax.get_ylabel() == "cross-entropy (nats), mean per pixel"
    assert "mean IU" in miu_ax.get_ylabel() and loss_ax.get_xlabel() == "optimizer step"
    assert curves_figure(tmp_path, "focal", False).axes[0].get_ylabel() == "focal loss, summed over pixels"


def test_importing_fcnseg_leaves_matplotlibs_backend_alone(tmp_path) -> None:
    """A user's backend (here svg, from MPLBACKEND) survives importing every fcnseg module that draws, and
    pictures are still written (each figure is drawn by Agg on its own canvas)."""
    import os
    import subprocess
    import sys

    probe = (
        "import matplotlib, numpy as np\n"
        "before = matplotlib.get_backend()\n"
        "import fcnseg, fcnseg.viz, fcnseg.train.trainer, fcnseg.train.logging, fcnseg.cli.main\n"
        "import fcnseg.experiments.demo, fcnseg.experiments.miniature\n"
        f"fcnseg.viz.save_confusion({str(tmp_path / 'c.png')!r}, np.eye(2, dtype=int), ['a', 'b'])\n"
        "print(before, matplotlib.get_backend())\n"
    )
    env = {**os.environ, "MPLBACKEND": "svg"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["svg", "svg"] and (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
