"""A ``Segmenter`` for what a command names: a checkpoint, or a registry name with a weights file.

``fcnseg predict`` and its Ray Data workers open their model here, so one process and many segment
alike; int8 calibration images come from a folder or the checkpoint's own training set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError
from ..runtime.calibration import calibration_images
from ..runtime.checkpoint import preprocessing_of
from .predictor import Segmenter

__all__ = ["DTYPES", "open_segmenter", "options_of"]

#: ``--dtype`` words: auto leaves the precision to the engine; the others force PyTorch with that autocast
DTYPES = {"auto": None, "fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def open_segmenter(
    checkpoint: str | Path | None = None,
    *,
    model: str | None = None,
    weights: str | Path | None = None,
    num_classes: int | None = None,
    preprocessing: str = "caffe_voc",
    device: str | torch.device = "cpu",
    engine: str | None = None,
    dtype: str = "auto",
    calibration: str | Path | None = None,
    calibration_count: int = 32,
) -> tuple[Segmenter, list[str]]:
    """The Segmenter and class names of ``checkpoint`` (or ``model`` with ``weights``), on ``engine``.

    Raises:
        ConfigError: neither a checkpoint nor a name with weights; an unknown dtype or engine.
    """
    from ..runtime.model_source import load_model

    if dtype not in DTYPES:
        raise ConfigError(f"dtype {dtype!r}: one of {', '.join(DTYPES)}")
    net, info = load_model(checkpoint, name=model, weights=weights, num_classes=num_classes,
                           preprocessing=preprocessing)  # fmt: skip
    seg = Segmenter(net, preprocessing=preprocessing_of(info), device=device, dtype=DTYPES[dtype], engine=engine,
                    source=Path(checkpoint or weights),  # type: ignore[arg-type]
                    calibration=lambda: calibration_images(info, calibration, calibration_count),
                    reloadable=checkpoint is not None)  # fmt: skip
    seg.classes, seg.info = list(info.classes), info
    return seg, list(info.classes)


def options_of(ns: Any) -> dict[str, Any]:
    """:func:`open_segmenter`'s keyword arguments from a record with ``fcnseg predict``'s option names
    (an ``argparse.Namespace``); ``int8`` set means the ``onnxruntime-int8`` engine."""
    get = lambda name, default=None: getattr(ns, name, default)  # noqa: E731
    return {"checkpoint": get("checkpoint"), "model": get("model"), "weights": get("weights"),
            "num_classes": get("num_classes"), "preprocessing": get("preprocessing", "caffe_voc"),
            "engine": "onnxruntime-int8" if get("int8") else get("engine"), "dtype": get("dtype", "auto"),
            "calibration": get("calibration"), "calibration_count": get("calibration_count", 32)}  # fmt: skip
