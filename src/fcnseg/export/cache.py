"""ONNX files kept beside a checkpoint, re-made when the checkpoint's *content* changes (not its mtime).

``CKPT.onnx`` (fp32) and ``CKPT.int8.onnx`` are exported on first use. A sidecar ``….onnx.json`` records
the SHA-256 of the checkpoint they came from, the kind, and the fcnseg version; a mismatch in any of
them (a retrained checkpoint copied over the old one, a clock that went backwards, an upgrade) makes
the next use export again instead of trusting a stale graph.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import __version__
from ..io import atomic_write

__all__ = ["cached_onnx", "file_sha256"]


def file_sha256(path: str | Path, chunk: int = 1 << 22) -> str:
    """The SHA-256 of a file, read in 4 MB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def cached_onnx(
    weights: str | Path, model: Any, *, int8: bool = False, calibration: Callable[[], list] | None = None
) -> Path:
    """The ONNX file for checkpoint ``weights`` (fp32, or int8 calibrated on ``calibration()``), made if stale."""
    from . import export_onnx
    from .int8 import quantize_int8

    weights = Path(weights)
    target = weights.with_name(weights.stem + (".int8.onnx" if int8 else ".onnx"))
    record = target.with_name(target.name + ".json")
    key = {"source_sha256": file_sha256(weights), "kind": "int8" if int8 else "fp32", "fcnseg": __version__}
    if target.is_file() and _read(record) == key:
        return target
    print(f"exporting {weights} → {target} (once for this checkpoint)", file=sys.stderr)
    if int8:
        quantize_int8(model, target, calibration() if calibration else [])
    else:
        export_onnx(model, target, external_data=True)
    with atomic_write(record, "w") as f:
        json.dump(key, f)
    return target


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
