"""Inference: segment images of any size with the preprocessing the weights declare."""

from .predictor import Segmenter

__all__ = ["Segmenter"]
