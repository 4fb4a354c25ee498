"""The one image reader: allow-listed formats, a pixel limit read from the header, modes by their meaning.

Every image fcnseg decodes (predict inputs, uploads, dataset images and masks) goes through
:func:`open_image`, which

* refuses anything that is not a regular file (a FIFO or device named ``x.png`` would block forever);
* lets Pillow identify only the raster formats in :data:`IMAGE_FORMATS` (so PostScript renamed ``.png``
  never reaches Ghostscript);
* checks width × height from the header against :func:`max_pixels` *before* the pixels are decoded
  (a 27 kB PNG can declare 225 megapixels).

:func:`to_rgb` then converts by meaning, not by accident of storage: 16-bit (and 32-bit integer) images
by their bit depth, float images by their range, and every mode with alpha composited over black.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import DataError, first_line
from .files import check_regular, open_regular

__all__ = [
    "IMAGE_FORMATS",
    "IMAGE_SUFFIXES",
    "MAX_PIXELS",
    "exif_orientation",
    "max_pixels",
    "open_image",
    "orient",
    "read_rgb",
    "read_rgb_oriented",
    "significant_bits",
    "to_rgb",
]

#: raster formats fcnseg decodes (JPEG includes MPO, the variant many cameras write)
IMAGE_FORMATS = ("JPEG", "PNG", "BMP", "TIFF", "WEBP", "GIF", "PPM")
#: file suffixes taken as images in a folder
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm", ".pbm", ".pnm")
#: default pixel limit (width × height); ``FCNSEG_MAX_PIXELS`` overrides it. Larger images: predict --tile
MAX_PIXELS = 100_000_000
#: bit depths a 16/32-bit container usually holds (camera and medical sensors), tried smallest first
_SENSOR_DEPTHS = (8, 10, 12, 14, 16, 24, 32)

Image.MAX_IMAGE_PIXELS = None  # our own limit below is checked first, from the header, for every format
Image.init()  # register every plugin now, so the formats= allow-list finds MPO and the rest


def max_pixels() -> int:
    """The pixel limit in force: ``FCNSEG_MAX_PIXELS`` if set (a positive integer), else :data:`MAX_PIXELS`."""
    raw = os.environ.get("FCNSEG_MAX_PIXELS")
    if raw is None:
        return MAX_PIXELS
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise DataError(f"FCNSEG_MAX_PIXELS={raw!r}: expected a positive integer")
    return value


def open_image(
    source: str | os.PathLike | IO[bytes],
    *,
    name: str | None = None,
    formats: tuple[str, ...] = IMAGE_FORMATS,
    limit: int | None = None,
) -> Image.Image:
    """Open, check and decode an image; errors name ``name`` (or the path) and say what is wrong.

    ``limit``: the pixel limit (default :func:`max_pixels`).
    """
    label = name or (str(source) if not hasattr(source, "read") else "upload")
    if not hasattr(source, "read"):
        source = _regular_file(Path(source))  # type: ignore[arg-type]
    try:
        img = Image.open(source, formats=list(formats))  # type: ignore[arg-type]
    except FileNotFoundError:
        raise DataError(f"{label}: file not found") from None
    except UnidentifiedImageError:
        raise DataError(f"{label}: not an image file fcnseg reads ({', '.join(formats)})") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise DataError(f"{label}: corrupt or truncated image ({first_line(e)})") from None
    width, height = img.size
    limit = limit or max_pixels()
    if width * height > limit:
        img.close()
        raise DataError(
            f"{label}: image too large: {width}×{height} exceeds the limit of {limit} pixels "
            "(FCNSEG_MAX_PIXELS raises it)"
        )
    try:
        img.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(f"{label}: corrupt or truncated image ({first_line(e)})") from None
    return img


def read_rgb(source: str | os.PathLike | IO[bytes], *, name: str | None = None, limit: int | None = None) -> np.ndarray:
    """An image file (or binary file object) as ``(H, W, 3)`` uint8 RGB; see the module docstring."""
    img = open_image(source, name=name, limit=limit)
    label = name or (str(source) if not hasattr(source, "read") else "upload")
    return to_rgb(img, label, significant_bits(source, img))


def read_rgb_oriented(
    source: str | os.PathLike | IO[bytes], *, name: str | None = None, limit: int | None = None
) -> tuple[np.ndarray, int]:
    """:func:`read_rgb` and the EXIF orientation it applied (1: none), so a label map can be given the same turn."""
    img = open_image(source, name=name, limit=limit)
    label = name or (str(source) if not hasattr(source, "read") else "upload")
    orientation = exif_orientation(img)
    return to_rgb(img, label, significant_bits(source, img)), orientation


def exif_orientation(img: Image.Image) -> int:
    """The image's EXIF orientation (1–8; 1, upright, when absent or not one of the eight)."""
    try:
        value = img.getexif().get(0x0112, 1)
    except (OSError, SyntaxError, ValueError, TypeError):
        return 1
    return value if isinstance(value, int) and value in _ORIENT else 1


#: EXIF orientation → how :func:`PIL.ImageOps.exif_transpose` turns the pixels upright, on an array
_ORIENT = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],  # FLIP_LEFT_RIGHT
    3: lambda a: a[::-1, ::-1],  # ROTATE_180
    4: lambda a: a[::-1],  # FLIP_TOP_BOTTOM
    5: lambda a: a.swapaxes(0, 1),  # TRANSPOSE
    6: lambda a: np.rot90(a, -1),  # ROTATE_270 (clockwise)
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),  # TRANSVERSE
    8: lambda a: np.rot90(a, 1),  # ROTATE_90 (counter-clockwise)
}


def orient(array: np.ndarray, orientation: int) -> np.ndarray:
    """``(H, W, …)`` stored pixels turned upright as EXIF ``orientation`` says (what :func:`to_rgb` does to images).

    Example:
        >>> orient(np.array([[1, 2, 3]]), 6).tolist()
        [[1], [2], [3]]
    """
    return np.ascontiguousarray(_ORIENT.get(orientation, _ORIENT[1])(array))


def _regular_file(path: Path) -> Path:
    if not os.path.exists(path):
        raise DataError(f"{path}: file not found")
    return check_regular(path, what="image file")


def to_rgb(img: Image.Image, label: str = "image", bits: int | None = None) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB: EXIF rotation applied, high bit depths and floats converted by meaning.

    ``bits``: the significant bits the file declares (:func:`significant_bits`), if any.
    """
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        grey = _scale_integer(np.asarray(img), img.mode, label, bits)
        return np.repeat(grey[..., None], 3, axis=2)
    if img.mode == "F":
        grey = _scale_float(np.asarray(img, dtype=np.float64), label)
        return np.repeat(grey[..., None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "La", "RGBa", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        return np.asarray(Image.alpha_composite(Image.new("RGBA", img.size, (0, 0, 0, 255)), rgba).convert("RGB"))
    return np.asarray(img.convert("RGB"))


def _scale_integer(arr: np.ndarray, mode: str, label: str, bits: int | None) -> np.ndarray:
    """Integer samples → 8 bits by the image's bit depth.

    The depth is the PNG's declared significant bits (``sBIT``) when present, else the smallest common
    sensor depth (8, 10, 12, 14, 16 …) that holds the largest sample: a 12-bit scan stored in a 16-bit PNG
    keeps its brightness instead of coming out 16× too dark.
    """
    arr = arr.astype(np.int64)
    if arr.size and arr.min() < 0:
        raise DataError(f"{label}: negative pixel values ({int(arr.min())}) in a {mode} image")
    peak = int(arr.max()) if arr.size else 0
    depth = bits or next((d for d in _SENSOR_DEPTHS if peak < 2**d), 32)
    top = float(2**depth - 1)
    return (np.minimum(arr, top) / top * 255.0).round().astype(np.uint8)


def _scale_float(arr: np.ndarray, label: str) -> np.ndarray:
    """Float samples → 8 bits by their range: [0, 1] is scaled by 255, [0, 255] is taken as is."""
    if arr.size and not np.isfinite(arr).all():
        raise DataError(f"{label}: float image with NaN or infinite values")
    lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
    if lo >= 0.0 and hi <= 1.0:
        return (arr * 255.0).round().astype(np.uint8)
    if lo >= 0.0 and hi <= 255.0:
        return arr.round().astype(np.uint8)
    raise DataError(f"{label}: float image with values in [{lo:g}, {hi:g}]; expected [0, 1] or [0, 255]")


def significant_bits(source: str | os.PathLike | IO[bytes], img: Image.Image) -> int | None:
    """The significant bits a 16-bit PNG declares in its ``sBIT`` chunk (Pillow does not parse it)."""
    if img.format != "PNG" or not img.mode.startswith("I"):
        return None
    if hasattr(source, "read"):
        pos = source.tell()  # type: ignore[union-attr]
        source.seek(0)  # type: ignore[union-attr]
        head = source.read(1 << 16)  # type: ignore[union-attr]
        source.seek(pos)  # type: ignore[union-attr]
    else:
        with open_regular(source, what="image file") as f:  # type: ignore[arg-type]
            head = f.read(1 << 16)
    return png_significant_bits(head)


def png_significant_bits(head: bytes) -> int | None:
    """The largest significant-bits value of a PNG's ``sBIT`` chunk, read from the file's first bytes."""
    if not head.startswith(b"\x89PNG\r\n\x1a\n"):
        return None
    pos = 8
    while pos + 8 <= len(head):
        length = int.from_bytes(head[pos : pos + 4], "big")
        kind = head[pos + 4 : pos + 8]
        if kind == b"sBIT":
            data = head[pos + 8 : pos + 8 + length]
            return max(data) if data else None
        if kind in (b"IDAT", b"IEND"):
            return None
        pos += 12 + length
    return None
