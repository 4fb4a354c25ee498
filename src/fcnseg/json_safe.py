"""JSON for untrusted files: nesting bounded before parsing, only finite numbers, every failure one FCNError.

Python's ``json`` recurses once per nesting level and only stops at the interpreter's recursion limit
(which libraries raise), accepts ``NaN`` and ``Infinity`` (not JSON) and turns ``1e400`` into infinity.
:func:`load_json` measures the nesting on the raw text first (strings removed by one regular expression,
then a running sum over the brackets: linear time, no recursion), refuses anything deeper than
``max_depth``, and then parses with every number checked to be finite.
"""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np

from .errors import DataError, FCNError
from .files import read_bytes

__all__ = ["MAX_JSON_DEPTH", "json_depth", "load_json", "loads_json"]

#: COCO nests 5 levels (root → annotations → annotation → segmentation → polygon); labelme 4
MAX_JSON_DEPTH = 32

#: a JSON string (escapes included), or an unterminated one up to the end: never retried from a later quote
_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+(?:"|\Z)', re.DOTALL)
_BRACKETS = bytes(range(256)).translate(None, b"[]{}")  # every byte but the brackets: deleted


def json_depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects in JSON text ``raw`` (strings ignored), without parsing it.

    Example:
        >>> json_depth(b'{"a": [1, [2, "]]]"]], "b": {}}')
        3
    """
    skeleton = _STRING.sub(b"", raw).translate(None, _BRACKETS)
    if not skeleton:
        return 0
    steps = np.frombuffer(skeleton, np.uint8)
    opens = (steps == ord("[")) | (steps == ord("{"))
    return int(np.cumsum(np.where(opens, 1, -1), dtype=np.int64).max(initial=0))


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _NotFinite(f"number {text[:24]} is too large (not a finite double)")
    return value


def _constant(text: str) -> float:
    raise _NotFinite(f"{text} is not a JSON number")


class _NotFinite(ValueError):
    pass


def loads_json(
    raw: bytes | str, source: str, *, max_depth: int = MAX_JSON_DEPTH, error: type[FCNError] = DataError
) -> Any:
    """Parse JSON text ``raw`` (named ``source`` in errors) with bounded nesting and finite numbers only.

    Raises:
        FCNError: ``error`` (a :class:`~fcnseg.errors.DataError` by default), one line naming ``source``:
            not UTF-8, not JSON, nested deeper than ``max_depth``, ``NaN``/``Infinity`` or a number out of range.
    """
    import json

    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    depth = json_depth(data)
    if depth > max_depth:
        raise error(f"{source}: refused: JSON nested {depth} levels deep (at most {max_depth})")
    try:
        text = data.decode("utf-8") if isinstance(raw, bytes) else raw
        return json.loads(text, parse_constant=_constant, parse_float=_finite)
    except UnicodeDecodeError as e:
        raise error(f"{source}: not UTF-8 text (byte {e.start}: {e.reason})") from None
    except _NotFinite as e:
        raise error(f"{source}: not valid JSON: {e}") from None
    except json.JSONDecodeError as e:
        raise error(f"{source}: not a JSON file ({e})") from None
    except (ValueError, RecursionError) as e:  # an integer of more than 4300 digits, …
        raise error(f"{source}: not valid JSON ({type(e).__name__}: {' '.join(str(e).split())[:120]})") from None


def load_json(
    path: str | os.PathLike,
    what: str = "JSON file",
    *,
    max_depth: int = MAX_JSON_DEPTH,
    limit: int | None = None,
    error: type[FCNError] = DataError,
) -> Any:
    """Read and parse the JSON file ``path`` with :func:`loads_json`; ``what`` names it when it is missing.

    Only a regular file is read (a FIFO would block forever); more than ``limit`` bytes is refused unread.
    """
    raw = read_bytes(path, limit=limit, what=what, error=error)
    return loads_json(raw, str(path), max_depth=max_depth, error=error)
