"""SegmentationFolder: pairing by stem, indexed and RGB masks, problems reported up front."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fcnseg.data import SegmentationFolder, get_dataset, voc_palette
from fcnseg.errors import DataError

from .fixtures import jpeg, palette_png


def _folder(root, stems=("a", "b"), rgb_masks=False):
    masks = {}
    for n, s in enumerate(stems):
        jpeg(root / "images" / f"{s}.jpg", 8, 10, seed=n)
        m = np.zeros((8, 10), np.uint8)
        m[2:5, 3:7] = n + 1
        m[0, 0] = 255
        masks[s] = m
        if rgb_masks:
            (root / "masks").mkdir(parents=True, exist_ok=True)
            Image.fromarray(voc_palette()[m]).save(root / "masks" / f"{s}.png")
        else:
            palette_png(root / "masks" / f"{s}.png", m)
    return masks


@pytest.mark.parametrize("rgb", [False, True])
def test_pairs_and_decodes_indexed_and_rgb_masks(tmp_path, rgb: bool) -> None:
    masks = _folder(tmp_path, rgb_masks=rgb)
    ds = SegmentationFolder(tmp_path / "images", tmp_path / "masks")
    assert ds.stems == ["a", "b"] and ds.classes == ("class_0", "class_1", "class_2")
    for i, s in enumerate(ds.stems):
        np.testing.assert_array_equal(ds[i][1].numpy(), masks[s])  # VOC void colour decodes to 255
    named = get_dataset("folder", tmp_path, classes=["bg", "x", "y", "z"])
    assert named.num_classes == 4


def test_all_pairing_problems_reported_at_once(tmp_path) -> None:
    _folder(tmp_path, stems=("a", "b", "c"))
    (tmp_path / "masks" / "b.png").unlink()
    palette_png(tmp_path / "masks" / "orphan.png", np.zeros((8, 10), np.uint8))
    jpeg(tmp_path / "images" / "c.png", 8, 10, seed=9)
    with pytest.raises(DataError) as e:
        SegmentationFolder(tmp_path / "images", tmp_path / "masks")
    msg = str(e.value)
    assert (
        "3 problems" in msg
        and "several files for 'c'" in msg
        and "b.jpg: no mask" in msg
        and "orphan.png: no image" in msg
    )


def test_unknown_rgb_colour_names_file_and_colour(tmp_path) -> None:
    _folder(tmp_path, stems=("a",), rgb_masks=True)
    arr = np.zeros((8, 10, 3), np.uint8)
    arr[1, 1] = (1, 2, 3)
    Image.fromarray(arr).save(tmp_path / "masks" / "a.png")
    with pytest.raises(DataError, match=r"a\.png: colours \[\(1, 2, 3\)\] are not in the palette"):
        SegmentationFolder(tmp_path / "images", tmp_path / "masks")


def test_empty_and_missing_folders(tmp_path) -> None:
    with pytest.raises(DataError, match="images folder not found"):
        SegmentationFolder(tmp_path / "nope", tmp_path)
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(DataError, match="no images"):
        SegmentationFolder(tmp_path / "images", tmp_path / "masks")
