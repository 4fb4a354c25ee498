"""fcnseg: Fully Convolutional Networks for Semantic Segmentation (Long, Shelhamer, Darrell) on PyTorch.

Public API: :func:`get_model` (``weights="voc"`` for the reference FCNs' pretrained weights, fetched and cached on
first use: :mod:`fcnseg.weights`), :func:`list_models`, :func:`load_checkpoint`, :class:`Segmenter`, and the metrics
(:class:`ConfusionMatrix`, :func:`scores`). Each is imported on first use, so ``import fcnseg`` itself is cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_attributes

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .inference import Segmenter
    from .metrics import ConfusionMatrix, scores
    from .models import list_models
    from .runtime.checkpoint import load_checkpoint
    from .weights import get_model

__all__ = ["ConfusionMatrix", "Segmenter", "__version__", "get_model", "list_models", "load_checkpoint", "scores"]

__getattr__, __dir__ = lazy_attributes(
    __name__,
    {
        "get_model": ".weights",
        "list_models": ".models",
        "load_checkpoint": ".runtime.checkpoint",
        "Segmenter": ".inference",
        "ConfusionMatrix": ".metrics",
        "scores": ".metrics",
    },
)
