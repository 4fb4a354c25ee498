"""A photo with an EXIF orientation and its label map stay aligned: the image is shown upright, as
``fcnseg.imageio.read_rgb`` shows every image, and a label map in the photo's stored frame gets the same turn."""

from __future__ import annotations

import importlib.util
import io
import json

import numpy as np
import pytest
from PIL import Image, ImageOps

from fcnseg.data import get_dataset

from .fixtures_tools import grey_png


def _photo(path, stored: np.ndarray, orientation: int) -> None:
    """A JPEG of ``stored`` (H, W) brightness whose EXIF orientation is ``orientation``."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    Image.fromarray(np.repeat(stored[..., None], 3, axis=2)).save(buf, "JPEG", quality=98, exif=exif)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())


def orient(stored: np.ndarray, orientation: int) -> np.ndarray:
    """What Pillow's own ``exif_transpose`` makes of ``stored`` under ``orientation`` (the oracle)."""
    img = Image.fromarray(stored)
    img.getexif()[0x0112] = orientation
    return np.asarray(ImageOps.exif_transpose(img))


def _marked(h: int, w: int) -> np.ndarray:
    """An (h, w) 0/1 marker no turn or flip maps onto itself: a block at the top-left, a bar along the top."""
    m = np.zeros((h, w), np.uint8)
    m[:4, :3] = 1
    m[0, : w - 2] = 1
    return m


def _aligned(image, mask) -> bool:
    bright = image.numpy()[0] > 127
    return bool(np.array_equal(bright, mask.numpy() == 1))


@pytest.mark.parametrize(
    "orientation, size, frame",
    [
        (6, (16, 16), "stored"),  # the reported case: square, 90°: the sizes cannot tell; stored frame it is
        (8, (16, 16), "stored"),
        (3, (12, 16), "stored"),  # 180°: never told by the sizes
        (2, (12, 16), "stored"),
        (6, (10, 16), "stored"),  # non-square: the mask has the stored picture's size (was: "mask is 16×10 …")
        (5, (10, 16), "stored"),
        (6, (10, 16), "upright"),  # non-square: the mask has the upright size, drawn on the upright picture
    ],
)
def test_folder_pairs_stay_aligned(tmp_path, orientation: int, size: tuple[int, int], frame: str) -> None:
    stored = _marked(*size)
    _photo(tmp_path / "images" / "p.jpg", stored * 255, orientation)
    grey_png(tmp_path / "masks" / "p.png", stored if frame == "stored" else orient(stored, orientation))
    ds = get_dataset("folder", tmp_path, classes=["bg", "thing"])
    image, mask = ds[0]
    assert tuple(image.shape[-2:]) == orient(stored, orientation).shape
    assert _aligned(image, mask)


@pytest.mark.skipif(importlib.util.find_spec("pycocotools") is None, reason="needs the coco extra")
@pytest.mark.parametrize("orientation, size", [(6, (16, 16)), (6, (10, 16)), (3, (10, 16))])
def test_coco_pairs_stay_aligned(tmp_path, orientation: int, size: tuple[int, int]) -> None:
    """COCO's annotations are in the stored frame (its JSON gives the stored width and height)."""
    import pycocotools.mask as m

    stored = _marked(*size)
    _photo(tmp_path / "val2017" / "p.jpg", stored * 255, orientation)
    rle = m.encode(np.asfortranarray(stored))
    h, w = size
    data = {
        "images": [{"id": 1, "file_name": "p.jpg", "height": h, "width": w}],
        "categories": [{"id": 1, "name": "thing"}],
        "annotations": [
            {
                "id": 7,
                "image_id": 1,
                "category_id": 1,
                "iscrowd": 0,
                "segmentation": {**rle, "counts": rle["counts"].decode()},
            }
        ],
    }
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "instances_val2017.json").write_text(json.dumps(data))
    image, mask = get_dataset("coco", tmp_path, "val2017")[0]
    assert _aligned(image, mask)
