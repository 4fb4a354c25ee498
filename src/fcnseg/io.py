"""File I/O that names the file when it fails and never leaves half a file behind."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image

from .errors import DataError
from .imageio import open_image, read_rgb

__all__ = [
    "atomic_write",
    "clean_stale_temps",
    "json_safe",
    "label_png",
    "palette_png",
    "read_image",
    "read_label_png",
    "write_json",
    "write_label_png",
    "write_palette_png",
]

#: the longest file name most file systems take, in bytes (ext4, XFS, btrfs, APFS, NTFS in UTF-16 units)
NAME_MAX = 255
#: what :func:`atomic_write` names its temp files: ``.NAME.PID.HEX12.tmp`` (NAME shortened to fit NAME_MAX)
_TEMP = re.compile(r"^\..*\.(\d+)\.[0-9a-f]{12}\.tmp$", re.DOTALL)


def _temp_name(name: str) -> str:
    """``.NAME.PID.HEX.tmp`` within :data:`NAME_MAX` bytes: a legal 250-byte name must not fail on its temp file."""
    tail = f".{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp"
    room = NAME_MAX - len(tail) - 1
    short = name
    while len(os.fsencode(short)) > room:
        short = short[:-1]
    return f".{short}{tail}"


def _named(e: OSError, path: Path, tmp: str) -> OSError:
    """``e`` naming the file being written (``path``), not its temp file and not nothing (a write's error)."""
    if e.errno is None or (e.filename not in (None, tmp) and e.filename2 is None):
        return e
    return OSError(e.errno, e.strerror or str(e), str(path))


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Write to a temporary file in the same folder, then ``os.replace`` it onto ``path``.

    A crash or exception inside the block leaves ``path`` as it was (absent or the old version). The file
    gets the permissions a plain ``open`` would give it (0o666 less the umask), not ``mkstemp``'s 0o600.
    An ``OSError`` (a full disk, a read-only folder) names ``path``, never the temp file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = str(path.parent / _temp_name(path.name))
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as e:
        raise _named(e, path, tmp) from None
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise _named(e, path, tmp) from None
        raise


def clean_stale_temps(folder: str | os.PathLike) -> int:
    """Remove the temp files :func:`atomic_write` left under ``folder`` when its process was killed.

    A temp file names its writer's pid (``.NAME.PID.HEX12.tmp``); files of a live process are left alone, so
    this is safe while other processes (torchrun ranks, Ray workers) write into the same folder. Only names of
    exactly that pattern are touched. Returns how many were removed.
    """
    removed = 0
    for tmp in Path(folder).rglob(".*.tmp"):
        match = _TEMP.match(tmp.name)
        if match is None or _alive(int(match.group(1))) or not tmp.is_file():
            continue
        with contextlib.suppress(OSError):
            tmp.unlink()
            removed += 1
    return removed


def json_safe(value: Any) -> Any:
    """``value`` with every NaN and infinity (Python, NumPy or tensor scalars) as ``None``: valid JSON (``null``).

    JSON has no NaN: Python's ``json`` writes a bare ``NaN`` that other readers refuse.
    """
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, str) else k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: str | os.PathLike, value: Any, *, indent: int | None = 2) -> Path:
    """``value`` as strict JSON (undefined numbers as ``null``), written atomically; returns the path."""
    text = json.dumps(json_safe(value), indent=indent, allow_nan=False, ensure_ascii=False)
    with atomic_write(path, "w") as f:
        f.write(text + "\n")
    return Path(path)


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


#: modes a 16-bit greyscale PNG opens in (Pillow names the same file differently across versions)
_WIDE = ("I;16", "I;16B", "I;16L", "I")


def read_label_png(path: str | os.PathLike) -> np.ndarray:
    """A label image as ``(H, W)`` class indices: palette PNGs give their indices, grey PNGs their values.

    8-bit PNGs give uint8; 16-bit greyscale PNGs (the masks of models with more than 256 classes) uint16.
    """
    path = Path(path)
    img = open_image(path, formats=("PNG",))
    if img.mode in _WIDE:
        arr = np.asarray(img)
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise DataError(f"{path}: label values outside 0..65535")
        return arr.astype(np.uint16)
    if img.mode not in ("P", "L"):
        raise DataError(f"{path}: label image must be an indexed (palette) or greyscale PNG, got mode {img.mode}")
    return np.asarray(img)


def _label_depth(mask: np.ndarray) -> int:
    """8 (a palette PNG) or 16 (a 16-bit greyscale PNG): the depth ``mask``'s dtype and values need, never less."""
    if mask.dtype == np.uint8:
        return 8
    if mask.dtype == np.uint16:
        return 16
    if not np.issubdtype(mask.dtype, np.integer):
        raise DataError(f"class indices must be integers, got {mask.dtype}")
    lo, hi = (int(mask.min()), int(mask.max())) if mask.size else (0, 0)
    if lo < 0 or hi > 65535:
        raise DataError(f"class indices {lo}..{hi} do not fit a PNG mask (0..65535); refusing to wrap them")
    return 8 if hi <= 255 else 16


def label_png(mask: np.ndarray, palette: np.ndarray) -> bytes:
    """``(H, W)`` class indices as PNG bytes, never wrapped: an indexed PNG with ``palette`` (``(n, 3)`` uint8)
    for uint8 masks (and other integers up to 255), a 16-bit greyscale PNG for uint16 masks (models with more
    than 256 classes, whose predictions are uint16) and larger values. :func:`read_label_png` reads both."""
    if _label_depth(mask) == 16:
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(mask, dtype=np.uint16)).save(buf, format="PNG")
        return buf.getvalue()
    return palette_png(mask, palette)


def palette_png(mask: np.ndarray, palette: np.ndarray) -> bytes:
    """``(H, W)`` class indices (0..255) as the bytes of an indexed PNG with ``palette`` (``(n, 3)`` uint8)."""
    if _label_depth(np.asarray(mask)) != 8:
        raise DataError("class indices above 255 do not fit a palette PNG; write them with label_png (16-bit)")
    img = Image.fromarray(np.asarray(mask).astype(np.uint8), mode="P")
    flat = np.zeros((256, 3), np.uint8)
    flat[: len(palette)] = palette[:256]
    img.putpalette(flat.flatten().tolist())
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def write_label_png(path: str | os.PathLike, mask: np.ndarray, palette: np.ndarray) -> None:
    """Write ``(H, W)`` class indices as :func:`label_png` encodes them (palette or 16-bit PNG), atomically."""
    data = label_png(mask, palette)
    with atomic_write(path) as f:
        f.write(data)


def write_palette_png(path: str | os.PathLike, mask: np.ndarray, palette: np.ndarray) -> None:
    """Write ``(H, W)`` class indices as an indexed PNG with ``palette`` (16-bit above 255), atomically."""
    write_label_png(path, mask, palette)
