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
    path = save_grid(tmp_path / "g.png", [[image, truth, truth], [image, truth, np.zeros_like(truth)]],
                     titles=["image", "truth", "prediction"], classes=["background", "a", "b"])  # fmt: skip
    img = Image.open(path)
    assert img.format == "PNG" and img.size[0] > 200 and img.size[1] > 200
