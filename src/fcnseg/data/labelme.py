"""labelme JSON → the ``folder`` dataset: ``DST/images``, ``DST/masks`` (palette PNGs), ``DST/class_names.txt``.

Rendered as labelme's own ``labelme2voc.py`` does (``labelme.utils.shapes_to_label``): shapes are drawn in
file order, later over earlier; polygons, rectangles and circles filled, lines and line strips 10 px wide,
points as 5-px-radius disks, ``mask`` shapes pasted at their box. ``labels.txt`` follows labelme's
convention: ``__ignore__`` (→ 255) and ``_background_`` (→ 0) first, then one class a line (→ 1, 2, …).
The image is ``imageData`` when the JSON embeds it, else the file ``imagePath`` relative to the JSON.
Everything is rendered into a temporary folder renamed onto ``DST`` at the end, so a failure leaves no
half-written dataset.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from ..errors import DataError, FCNError
from ..files import read_bytes, read_text
from ..imageio import exif_orientation, open_image, significant_bits, to_rgb
from ..io import atomic_write, write_palette_png
from ..json_safe import load_json
from ..writes import claim_folder, real_path, refuse_overlap, staged
from .base import IGNORE_INDEX, voc_palette

__all__ = ["import_labelme", "read_labelme_labels", "render_shapes"]

#: a labels list and a labelme file are text of a few kB (a labelme file with its image embedded, a few MB)
MAX_LIST_BYTES, MAX_JSON_BYTES = 1 << 20, 1 << 30
LINE_WIDTH, POINT_SIZE = 10, 5  # labelme.utils.shape_to_mask's defaults
_SUFFIX = {"JPEG": ".jpg", "PNG": ".png", "BMP": ".bmp", "TIFF": ".tif", "WEBP": ".webp"}


def read_labelme_labels(path: str | Path) -> dict[str, int]:
    """``labels.txt`` → ``{name: value}``: ``__ignore__`` → 255, ``_background_`` → 0, classes → 1, 2, …"""
    path = Path(path)
    text = read_text(path, limit=MAX_LIST_BYTES, what="labels file")
    names = [line.strip() for line in text.splitlines() if line.strip()]
    values: dict[str, int] = {}
    if names[:1] == ["__ignore__"]:
        values["__ignore__"] = IGNORE_INDEX
        names = names[1:]
    if names[:1] != ["_background_"]:
        raise DataError(f"{path}: labelme labels start with __ignore__ (optional) and _background_, then the classes")
    for i, name in enumerate(names):
        if name in values:
            raise DataError(f"{path}: label {name!r} is listed twice")
        values[name] = i
    if len(names) > IGNORE_INDEX:
        raise DataError(f"{path}: {len(names)} classes; at most 255 fit in a mask (255 = ignore)")
    return values


def _points(shape: dict[str, Any], size: tuple[int, int], where: str) -> list[tuple[float, float]]:
    """A shape's points, checked as data: [x, y] pairs of finite numbers within one image size of the image."""
    raw = shape.get("points", [])
    number = (int, float)
    if not isinstance(raw, list) or not all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(v, number) and not isinstance(v, bool) for v in p)
        for p in raw
    ):
        raise DataError(f"{where}: points must be [x, y] pairs of numbers")
    xy = [(float(x), float(y)) for x, y in raw]
    if not all(math.isfinite(v) for p in xy for v in p):
        raise DataError(f"{where}: a point that is not a finite number")
    h, w = size
    if any(not (-w <= x <= 2 * w and -h <= y <= 2 * h) for x, y in xy):
        raise DataError(f"{where}: a point far outside the {w}×{h} image")
    return xy


def _shape_mask(size: tuple[int, int], shape: dict[str, Any], where: str) -> np.ndarray:
    """One shape as an ``(h, w)`` bool mask, drawn as ``labelme.utils.shape_to_mask`` draws it."""
    kind = shape.get("shape_type") or "polygon"
    if not isinstance(kind, str):
        raise DataError(f"{where}: shape_type must be a word, got {str(kind)[:40]}")
    xy = _points(shape, size, where)
    exact = {"circle": 2, "rectangle": 2, "line": 2, "point": 1, "mask": 2}.get(kind)
    least = {"polygon": 3, "linestrip": 2}.get(kind, 0)
    if (exact is not None and len(xy) != exact) or len(xy) < least:
        raise DataError(f"{where}: a {kind} with {len(xy)} point(s)")
    h, w = size
    if kind == "mask":
        return _paste_mask(size, shape, xy, where)
    img = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(img)
    if kind == "circle":
        (cx, cy), (px, py) = xy
        d = math.hypot(cx - px, cy - py)
        draw.ellipse([cx - d, cy - d, cx + d, cy + d], outline=1, fill=1)
    elif kind == "rectangle":
        (x1, y1), (x2, y2) = xy
        draw.rectangle([min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)], outline=1, fill=1)
    elif kind in ("line", "linestrip"):
        draw.line(xy=xy, fill=1, width=LINE_WIDTH)
    elif kind == "point":
        (cx, cy), r = xy[0], POINT_SIZE
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=1, fill=1)
    elif kind == "polygon":
        draw.polygon(xy=xy, outline=1, fill=1)
    else:
        raise DataError(f"{where}: unknown shape_type {kind!r}")
    return np.asarray(img, dtype=bool)


def _paste_mask(size: tuple[int, int], shape: dict[str, Any], xy: list[tuple[float, float]], where: str) -> np.ndarray:
    """A ``mask`` shape's PNG pasted with its top-left corner at the first point; what lies outside is cut off."""
    h, w = size
    out = np.zeros(size, bool)
    try:
        data = io.BytesIO(base64.b64decode(shape["mask"]))
        img = open_image(data, name=f"{where} mask", formats=("PNG",), limit=h * w)
    except FCNError as e:  # before ValueError: a DataError is one
        raise DataError(f"{where}: a mask shape whose 'mask' is not usable ({e})") from None
    except (KeyError, TypeError, ValueError, OSError, binascii.Error):
        raise DataError(f"{where}: a mask shape without a readable base64 PNG 'mask'") from None
    grey = img if img.mode in ("1", "L", "P", "I", "I;16", "F") else img.convert("L")
    part = np.asarray(grey) != 0
    x1, y1 = (int(v) for v in xy[0])  # labelme truncates
    top, left = max(0, y1), max(0, x1)
    bottom, right = min(h, y1 + part.shape[0]), min(w, x1 + part.shape[1])
    if top >= bottom or left >= right:
        raise DataError(
            f"{where}: the {part.shape[1]}×{part.shape[0]} mask at ({x1}, {y1}) lies outside the {w}×{h} image"
        )
    out[top:bottom, left:right] = part[top - y1 : bottom - y1, left - x1 : right - x1]
    return out


def render_shapes(
    size: tuple[int, int], shapes: list[dict[str, Any]], values: dict[str, int], where: str
) -> np.ndarray:
    """``(h, w)`` uint8 class mask of labelme ``shapes``, later shapes over earlier ones."""
    mask = np.zeros(size, np.uint8)
    for n, shape in enumerate(shapes):
        if not isinstance(shape, dict):
            raise DataError(f"{where}: shape {n} must be an object, got {str(shape)[:40]}")
        label = shape.get("label")
        if not isinstance(label, str) or label not in values:
            known = ", ".join(k for k in values if k != "__ignore__")
            raise DataError(f"{where}: shape {n} has label {label!r}, which is not in the labels file ({known})")
        mask[_shape_mask(size, shape, f"{where}: shape {n} ({label})")] = values[label]
    return mask


def _read_json(path: Path) -> dict[str, Any]:
    data = load_json(path, "labelme file", limit=MAX_JSON_BYTES)  # regular file, nesting bounded, numbers finite
    if not isinstance(data, dict) or not isinstance(data.get("shapes"), list):
        raise DataError(f"{path}: not a labelme file (no 'shapes' list)")
    return data


def _image_bytes(path: Path, data: dict[str, Any]) -> bytes:
    if data.get("imageData"):
        try:
            return base64.b64decode(data["imageData"], validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise DataError(f"{path}: imageData is not base64") from None
    if not data.get("imagePath") or not isinstance(data["imagePath"], str):
        raise DataError(f"{path}: neither imageData nor imagePath (a file name)")
    image = path.parent / data["imagePath"].replace("\\", "/")
    if not image.exists():
        raise DataError(f"{path}: image {image} (imagePath) not found")
    return read_bytes(image, what="image file")  # a regular file only (never a FIFO)


def _convert(path: Path, values: dict[str, int], stage: Path) -> None:
    data = _read_json(path)
    raw = _image_bytes(path, data)
    label = f"{path} (image)"
    img = open_image(io.BytesIO(raw), name=label)
    fmt, turn = img.format, exif_orientation(img)
    image = to_rgb(img, label, significant_bits(io.BytesIO(raw), img))  # upright, as labelme shows it
    h, w = image.shape[:2]
    if (data.get("imageHeight"), data.get("imageWidth")) not in ((None, None), (h, w)):
        raise DataError(
            f"{path}: imageHeight/imageWidth say {data.get('imageHeight')}×{data.get('imageWidth')}, "
            f"the image is {h}×{w}"
        )
    mask = render_shapes((h, w), data["shapes"], values, str(path))
    if fmt in _SUFFIX and turn == 1:
        with atomic_write(stage / "images" / f"{path.stem}{_SUFFIX[fmt]}") as f:
            f.write(raw)  # the file as it was: no re-encoding
    else:  # another format, or a photo EXIF turns: its upright pixels, which the shapes were drawn on
        with atomic_write(stage / "images" / f"{path.stem}.png") as f:
            Image.fromarray(image).save(f, format="PNG")
    write_palette_png(stage / "masks" / f"{path.stem}.png", mask, voc_palette())


def import_labelme(
    src: str | Path, labels: str | Path, out: str | Path, *, overwrite: bool = False
) -> tuple[int, list[str]]:
    """Render every labelme JSON under ``src`` (a folder, searched recursively, or one file) into ``out``.

    ``out`` must be new or empty (``overwrite``: write into it anyway), never ``src`` or inside it (compared by
    real paths, :mod:`fcnseg.writes`).

    Returns:
        ``(number of images, class names)``; the names (background first) are also in ``out/class_names.txt``.
    """
    src, out = Path(src), Path(out)
    values = read_labelme_labels(labels)
    files = [src] if src.is_file() else sorted(src.rglob("*.json")) if src.is_dir() else []
    if not files:
        raise DataError(f"{src}: no labelme .json files" if src.is_dir() else f"{src}: not found")
    stems: dict[str, Path] = {}
    for f in files:
        if f.stem in stems:
            raise DataError(f"{f}: same name as {stems[f.stem]}; the output is named by file stem")
        stems[f.stem] = f
    inputs = [src, labels]
    refuse_overlap(out, inputs, folder=True)
    ledger = claim_folder(out, kind="dataset", inputs=inputs, overwrite=overwrite, fresh=True, reuse=False)
    sources = {real_path(p): str(p) for p in [*inputs, *files]}
    with staged(ledger, inputs=sources, overwrite=overwrite, replace_previous=ledger.owner == "dataset") as stage:
        for f in files:
            _convert(f, values, stage)
        names = [n for n, _ in sorted(values.items(), key=lambda kv: kv[1]) if n != "__ignore__"]
        with atomic_write(stage / "class_names.txt", "w") as fh:
            fh.write("".join(f"{n}\n" for n in names))
    return len(files), names
