"""File I/O that names the file when it fails and never leaves half a file behind."""

from __future__ import annotations

import contextlib
import io
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import DataError

__all__ = ["atomic_write", "palette_png", "read_image", "read_label_png", "write_palette_png"]

Image.MAX_IMAGE_PIXELS = 200_000_000  # refuse decompression bombs (Pillow raises past 2× this)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Write to a temporary file in the same folder, then ``os.replace`` it onto ``path``.

    A crash or exception inside the block leaves ``path`` as it was (absent or the old version). The file
    gets the permissions a plain ``open`` would give it (0o666 less the umask), not ``mkstemp``'s 0o600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = str(path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _open(path: Path | IO[bytes], label: str | None = None) -> Image.Image:
    if label is not None:  # a file object: name it by ``label`` in messages
        path = _Named(path, label)  # type: ignore[arg-type]
    try:
        img = Image.open(path.fileobj if isinstance(path, _Named) else path)
        img.load()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except UnidentifiedImageError:
        raise DataError(f"{path}: not an image file Pillow can read") from None
    except Image.DecompressionBombError as e:
        raise DataError(f"{path}: image too large ({e})") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise DataError(f"{path}: corrupt or truncated image ({e})") from None
    return img


class _Named:
    def __init__(self, fileobj: IO[bytes], label: str) -> None:
        self.fileobj, self.label = fileobj, label

    def __str__(self) -> str:
        return self.label


def read_image(path: str | os.PathLike | IO[bytes], *, name: str | None = None) -> np.ndarray:
    """An image file as ``(H, W, 3)`` uint8 RGB (EXIF rotation applied; grey, RGBA, CMYK, 16-bit converted).

    ``path`` may also be a binary file object (an upload), named ``name`` in error messages.
    """
    img = ImageOps.exif_transpose(
        _open(path, name or "upload") if hasattr(path, "read") else _open(Path(path))  # type: ignore[arg-type]
    )
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        peak = arr.max() if arr.size else 0
        arr = (arr / (65535.0 if peak > 255 else 255.0) * 255.0).round().clip(0, 255).astype(np.uint8)
        return np.repeat(arr[..., None], 3, axis=2)
    if img.mode == "RGBA" or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (0, 0, 0, 255))
        img = Image.alpha_composite(background, img)
    return np.asarray(img.convert("RGB"))


def read_label_png(path: str | os.PathLike) -> np.ndarray:
    """A label image as ``(H, W)`` uint8 class indices: palette PNGs give their indices, grey PNGs their values."""
    path = Path(path)
    img = _open(path)
    if img.mode not in ("P", "L"):
        raise DataError(f"{path}: label image must be an indexed (palette) or greyscale PNG, got mode {img.mode}")
    return np.asarray(img)


def palette_png(mask: np.ndarray, palette: np.ndarray) -> bytes:
    """``(H, W)`` class indices as the bytes of an indexed PNG with ``palette`` (``(n, 3)`` uint8)."""
    img = Image.fromarray(mask.astype(np.uint8), mode="P")
    flat = np.zeros((256, 3), np.uint8)
    flat[: len(palette)] = palette[:256]
    img.putpalette(flat.flatten().tolist())
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def write_palette_png(path: str | os.PathLike, mask: np.ndarray, palette: np.ndarray) -> None:
    """Write ``(H, W)`` class indices as an indexed PNG with ``palette`` (``(n, 3)`` uint8), atomically."""
    with atomic_write(path) as f:
        f.write(palette_png(mask, palette))
