"""Inference: segment images of any size with the preprocessing the weights declare."""

from .fast import FastModel, optimize_for_inference
from .predictor import Segmenter

__all__ = ["FastModel", "Segmenter", "optimize_for_inference"]
