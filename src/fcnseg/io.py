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
from PIL import Image

from .errors import DataError
from .imageio import open_image, read_rgb

__all__ = ["atomic_write", "clean_stale_temps", "palette_png", "read_image", "read_label_png", "write_palette_png"]


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


def clean_stale_temps(folder: str | os.PathLike) -> int:
    """Remove the temp files :func:`atomic_write` left under ``folder`` when its process was killed.

    A temp file names its writer's pid (``.NAME.PID.HEX.tmp``); files of a live process are left alone, so
    this is safe while other processes (torchrun ranks, Ray workers) write into the same folder.
    Returns how many were removed.
    """
    removed = 0
    for tmp in Path(folder).rglob(".*.tmp"):
        parts = tmp.name.split(".")
        pid = int(parts[-3]) if len(parts) >= 5 and parts[-3].isdigit() else None
        if pid is not None and _alive(pid):
            continue
        with contextlib.suppress(OSError):
            tmp.unlink()
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _open(path: Path | IO[bytes], label: str | None = None) -> Image.Image:
    """Open and decode an image through the checked reader (:func:`fcnseg.imageio.open_image`)."""
    return open_image(path, name=label)


def read_image(path: str | os.PathLike | IO[bytes], *, name: str | None = None) -> np.ndarray:
    """An image file as ``(H, W, 3)`` uint8 RGB (EXIF rotation applied; grey, alpha, CMYK, 16-bit, float converted).

    ``path`` may also be a binary file object (an upload), named ``name`` in error messages. Formats,
    pixel limit and conversions: :mod:`fcnseg.imageio`.
    """
    if hasattr(path, "read"):
        return read_rgb(path, name=name or "upload")  # type: ignore[arg-type]
    return read_rgb(Path(path), name=name)  # type: ignore[arg-type]


def read_label_png(path: str | os.PathLike) -> np.ndarray:
    """A label image as ``(H, W)`` uint8 class indices: palette PNGs give their indices, grey PNGs their values."""
    path = Path(path)
    img = open_image(path, formats=("PNG",))
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
