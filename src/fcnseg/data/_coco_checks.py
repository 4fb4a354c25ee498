"""COCO JSON values checked as data before ``pycocotools`` sees them.

``pycocotools`` is C that trusts its input: a polygon vertex of NaN or 1e9 makes ``rleFrPoly`` allocate
memory in proportion to the outline's length in pixels (24 GB, then the out-of-memory killer); RLE counts
that add up to more than ``height × width`` make ``rleDecode`` write past its buffer. So every value is
checked here first: types, finite coordinates near the image, a bounded outline, run lengths that add up
to exactly the image, and image sizes under the pixel limit (:func:`fcnseg.imageio.max_pixels`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DataError
from ..imageio import max_pixels

__all__ = ["OUTLINE_FACTOR", "as_int", "check_image_entry", "checked_polygons", "checked_rle", "rle_string_counts"]

#: the outlines of one annotation may add up to this many times the image's width + height (in pixels);
#: ``pycocotools`` needs about 100 bytes per pixel of outline
OUTLINE_FACTOR = 100
#: vertices may lie outside the image by at most its own size (tools round a little past the border)
_MARGIN = 1.0


def as_int(value: Any) -> int | None:
    """``value`` as an integer if it is one (JSON ints, digit strings, integral floats), else ``None``; never a bool."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit() and len(value) < 20:
        return int(value)
    return None


def check_image_entry(entry: Any, n: int, source: Any) -> tuple[int, int]:
    """An ``images`` entry's ``(height, width)``, after checking its fields; raises naming the entry."""
    if not isinstance(entry, dict):
        raise DataError(f"{source}: images[{n}] must be an object, got {_shown(entry)}")
    name = entry.get("file_name")
    where = f"{source}: images[{n}]"
    if not isinstance(name, str) or not name.strip():
        raise DataError(f"{where}: file_name must be a file name, got {_shown(name)}")
    if not _scalar(entry.get("id")):
        raise DataError(f"{where} ({name}): id must be a number or a string, got {_shown(entry.get('id'))}")
    h, w = entry.get("height"), entry.get("width")
    if as_int(h) is None or as_int(w) is None or as_int(h) <= 0 or as_int(w) <= 0:  # type: ignore[operator]
        raise DataError(f"{where} ({name}): height and width must be positive integers, got {_shown(h)}×{_shown(w)}")
    h, w = as_int(h), as_int(w)
    limit = max_pixels()
    if h * w > limit:  # type: ignore[operator]
        raise DataError(f"{where} ({name}): {w}×{h} exceeds the limit of {limit} pixels (FCNSEG_MAX_PIXELS raises it)")
    return h, w  # type: ignore[return-value]


def _scalar(value: Any) -> bool:
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def checked_polygons(segm: list[Any], h: int, w: int, where: str) -> list[list[float]]:
    """The polygons of a ``segmentation`` list that ``pycocotools`` draws (3+ points), checked.

    Every polygon is a flat list of finite x, y numbers within one image size of the image, and all of them
    together have an outline of at most :data:`OUTLINE_FACTOR` × (width + height) pixels.
    """
    polygons: list[list[float]] = []
    outline = 0.0
    for k, p in enumerate(segm):
        if not isinstance(p, list) or len(p) % 2 or not all(_number(v) for v in p):
            raise DataError(f"{where}: polygon {k} is not a flat list of x, y numbers: {_shown(p)}")
        if len(p) < 6:  # 2 points, or 4 numbers (a box): pycocotools draws nothing either
            continue
        xy = np.asarray(p, np.float64).reshape(-1, 2)
        if not np.isfinite(xy).all():
            raise DataError(f"{where}: polygon {k} has a coordinate that is not a finite number")
        lo, hi = xy.min(axis=0), xy.max(axis=0)
        if lo[0] < -_MARGIN * w or hi[0] > (1 + _MARGIN) * w or lo[1] < -_MARGIN * h or hi[1] > (1 + _MARGIN) * h:
            raise DataError(
                f"{where}: polygon {k} reaches ({lo[0]:g}..{hi[0]:g}, {lo[1]:g}..{hi[1]:g}), far outside "
                f"the {w}×{h} image"
            )
        step = np.abs(np.diff(xy, axis=0, append=xy[:1])).max(axis=1)
        outline += float(step.sum())
        polygons.append([float(v) for v in p])
    if outline > OUTLINE_FACTOR * (h + w):
        raise DataError(
            f"{where}: polygons with an outline of {outline:.0f} px in a {w}×{h} image "
            f"(at most {OUTLINE_FACTOR} × (width + height))"
        )
    return polygons


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def checked_rle(segm: dict[str, Any], h: int, w: int, where: str) -> dict[str, Any]:
    """An RLE ``segmentation`` (``counts`` a list of run lengths or COCO's compressed string), checked.

    ``size`` must be ``[height, width]`` of the image and the runs must add up to exactly ``height × width``.
    """
    size, counts = segm.get("size"), segm.get("counts")
    if not (isinstance(size, list) and len(size) == 2 and all(as_int(v) is not None for v in size)):
        raise DataError(f"{where}: RLE size must be [height, width], got {_shown(size)}")
    if [as_int(v) for v in size] != [h, w]:
        raise DataError(f"{where}: RLE size {size} but the image is {h}×{w} (h×w)")
    if isinstance(counts, list):
        if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts):
            raise DataError(f"{where}: RLE counts must be non-negative integers")
        runs = counts
    elif isinstance(counts, str):
        runs = rle_string_counts(counts, where)
    else:
        raise DataError(f"{where}: RLE counts must be a list of run lengths or a string, got {_shown(counts)}")
    total = sum(runs)
    if total != h * w:
        raise DataError(f"{where}: RLE runs add up to {total} pixels; the {w}×{h} image has {h * w}")
    return {"size": [h, w], "counts": counts}


def rle_string_counts(text: str, where: str) -> list[int]:
    """The run lengths of COCO's compressed RLE string (``maskApi.c``'s ``rleFrString``), computed safely.

    Each run is a little-endian number of 5-bit groups (characters 48..111; bit 0x20: more follows, bit
    0x10 of the last: negative); from the fourth run on, each is stored as its difference to the run two
    before. Raises on characters outside the alphabet, a run cut off at the end, or a negative run.
    """
    raw = np.frombuffer(text.encode("latin-1", "replace"), np.uint8).astype(np.int64) - 48
    if (raw.size and ((raw < 0) | (raw > 63)).any()) or any(ord(c) > 255 for c in text):
        raise DataError(f"{where}: RLE counts string has characters outside COCO's alphabet ('0'..'o')")
    if raw.size == 0:
        return []
    ends = (raw & 0x20) == 0
    if not ends[-1]:
        raise DataError(f"{where}: RLE counts string ends inside a number")
    group = np.concatenate([[0], np.cumsum(ends)[:-1]])
    starts = np.flatnonzero(np.concatenate([[True], ends[:-1]]))
    digit = np.arange(raw.size) - starts[group]
    if digit.max() >= 7:  # 35 bits: more than any count of an image under the pixel limit
        raise DataError(f"{where}: RLE counts string holds a number too large for a mask")
    values = np.add.reduceat((raw & 0x1F) << (5 * digit), starts)
    last = raw[ends]
    negative = (last & 0x10) != 0
    values = np.where(negative, values - (np.int64(1) << (5 * (digit[ends] + 1))), values)
    counts = values.copy()
    if counts.size > 3:  # runs 3, 4, … are differences to the run two before (runs 0, 1, 2 are plain)
        counts[3::2] = counts[1] + np.cumsum(values[3::2])
        counts[4::2] = counts[2] + np.cumsum(values[4::2])
    if (counts < 0).any():
        raise DataError(f"{where}: RLE counts string decodes to a negative run length")
    return counts.tolist()
