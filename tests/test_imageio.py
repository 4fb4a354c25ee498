"""The one image reader (fcnseg/imageio.py): modes by meaning, pixel limits before decoding, regular files only."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import fcnseg
from fcnseg.io import read_image
from tests.badinput import IMAGE_CASES, png16, png_with


def test_image_modes_are_converted_correctly(tmp_path) -> None:
    for name, (content, _) in IMAGE_CASES.items():
        (tmp_path / name).write_bytes(content)
    assert read_image(tmp_path / "grey.png")[0, 0].tolist() == [100, 100, 100]
    assert read_image(tmp_path / "rgba.png")[0, 0].tolist() == [200, 100, 50]
    assert read_image(tmp_path / "16bit.png")[0, 0].tolist() == [255, 255, 255]
    assert read_image(tmp_path / "cmyk.jpg")[2, 3].tolist() == [255, 255, 255]  # CMYK (0,0,0,0) is white
    assert read_image(tmp_path / "palette.png")[0, 0].tolist() == [10, 20, 30]
    assert read_image(tmp_path / "exif-rotated.jpg").shape == (6, 4, 3)  # 6×4 stored, rotated 90° by EXIF
    assert read_image(tmp_path / "one-pixel.png").shape == (1, 1, 3)


def test_header_pixel_limit_refuses_before_decoding(tmp_path, monkeypatch) -> None:
    path = tmp_path / "225mp.png"
    path.write_bytes(png_with(15000, 15000))  # 225 M pixels in a few bytes (Pillow alone allows < 400 M)
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("pixels were decoded"))
    with pytest.raises(fcnseg.errors.DataError, match=r"225mp\.png: image too large: 15000×15000 exceeds"):
        read_image(path)  # refused from the header: nothing decoded


def test_pixel_limit_is_configurable(tmp_path, monkeypatch) -> None:
    path = tmp_path / "small.png"
    Image.new("RGB", (20, 10)).save(path)
    monkeypatch.setenv("FCNSEG_MAX_PIXELS", "100")
    with pytest.raises(fcnseg.errors.DataError, match="exceeds the limit of 100 pixels"):
        read_image(path)
    monkeypatch.setenv("FCNSEG_MAX_PIXELS", "lots")
    with pytest.raises(fcnseg.errors.DataError, match="FCNSEG_MAX_PIXELS='lots'"):
        read_image(path)


def test_postscript_named_png_never_reaches_ghostscript(tmp_path, monkeypatch) -> None:
    from PIL import EpsImagePlugin

    called = []
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", lambda *a, **k: called.append(a))
    path = tmp_path / "evil.png"
    path.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    with pytest.raises(fcnseg.errors.DataError, match=r"evil\.png: not an image file fcnseg reads"):
        read_image(path)
    assert not called


def test_high_bit_depths_are_scaled_by_their_depth_not_their_maximum(tmp_path) -> None:
    ramp = np.array([[0, 1024, 2048, 4095]])
    (tmp_path / "12bit.png").write_bytes(png16(ramp))  # a 12-bit scan in a 16-bit PNG, no sBIT
    assert read_image(tmp_path / "12bit.png")[0, :, 0].tolist() == [0, 64, 128, 255]
    (tmp_path / "sbit.png").write_bytes(png16(np.array([[0, 512, 1023]]), sbit=10))  # sBIT says 10 bits
    assert read_image(tmp_path / "sbit.png")[0, :, 0].tolist() == [0, 128, 255]
    (tmp_path / "full.png").write_bytes(png16(np.array([[0, 32768, 65535]])))
    assert read_image(tmp_path / "full.png")[0, :, 0].tolist() == [0, 128, 255]


def test_float_images_by_range_and_alpha_modes_composited(tmp_path) -> None:
    Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32)).save(tmp_path / "unit.tif")
    assert read_image(tmp_path / "unit.tif")[0, :, 0].tolist() == [0, 128, 255]
    Image.fromarray(np.array([[0.0, 100.0, 255.0]], np.float32)).save(tmp_path / "bytes.tif")
    assert read_image(tmp_path / "bytes.tif")[0, :, 0].tolist() == [0, 100, 255]
    Image.fromarray(np.array([[-3.0, 900.0]], np.float32)).save(tmp_path / "hdr.tif")
    with pytest.raises(fcnseg.errors.DataError, match=r"hdr\.tif: float image with values in \[-3, 900\]"):
        read_image(tmp_path / "hdr.tif")
    Image.new("LA", (2, 2), (200, 0)).save(tmp_path / "la.png")  # grey, fully transparent
    assert read_image(tmp_path / "la.png")[0, 0].tolist() == [0, 0, 0]  # composited over black, as RGBA is
