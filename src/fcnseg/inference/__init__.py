"""Inference: segment images of any size with the preprocessing the weights declare (names imported on use)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes

if TYPE_CHECKING:
    from .fast import FastModel, optimize_for_inference
    from .predictor import Segmenter

__all__ = ["FastModel", "Segmenter", "optimize_for_inference"]

__getattr__, __dir__ = lazy_attributes(
    __name__,
    {
        "FastModel": ".fast",
        "optimize_for_inference": ".fast",
        "Segmenter": ".predictor",
    },
)
