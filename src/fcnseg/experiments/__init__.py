"""Experiments that reproduce the paper's findings with fcnseg's public API."""

from .miniature import SCALES, Scale, run_miniature

__all__ = ["SCALES", "Scale", "run_miniature"]
