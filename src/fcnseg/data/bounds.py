"""Upper bounds of coarse prediction (the paper's Appendix A): how much mean IU an output stride allows.

A net whose scores live on a stride-``f`` grid and are upsampled cannot draw detail finer than that
grid. The bound is the mean IU of the *ground truth itself* pushed through the same bottleneck: the
label map taken down to the stride-``f`` grid and brought back to full size. The paper reports 86.1 /
92.8 / 96.4 mean IU for factors 32 / 16 / 8 on PASCAL VOC 2011 val: pixel-perfect output is not needed
for high mean IU.

Two ways down and up (``method``):

- ``"bilinear"`` (default; what an FCN does): each cell holds the class fractions of its ``f × f`` block
  (one-hot labels average-pooled, void pixels left out), the fractions are upsampled bilinearly
  (half-pixel centres) to full size and the argmax taken — the best an FCN with perfect coarse scores
  and bilinear upsampling can do;
- ``"nearest"``: each cell takes its block's most frequent class (void only if the whole block is void),
  repeated back over the block.

Pixels void in the ground truth stay out of the count, as in the metrics; blocks at the right and
bottom edge are partial (the map is padded with void to a multiple of ``f``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DataError
from ..metrics import ConfusionMatrix

__all__ = ["METHODS", "coarse_labels", "upper_bounds"]

METHODS = ("bilinear", "nearest")


def _fractions(label: torch.Tensor, factor: int, num_classes: int, ignore: int) -> torch.Tensor:
    """``(K, ceil(H/f), ceil(W/f))`` counts of each class per ``f × f`` block (void left out)."""
    h, w = label.shape
    ph, pw = -h % factor, -w % factor
    padded = F.pad(label, (0, pw, 0, ph), value=ignore)
    valid = padded != ignore
    onehot = torch.zeros(num_classes, *padded.shape)
    onehot.scatter_(0, torch.where(valid, padded, 0).long()[None], valid.float()[None])
    return F.avg_pool2d(onehot[None], factor)[0] * factor * factor


def coarse_labels(
    label: Any, factor: int, num_classes: int, *, method: str = "bilinear", ignore_index: int = 255
) -> np.ndarray:
    """``label`` ``(H, W)`` taken down to the stride-``factor`` grid and back up to ``(H, W)`` by ``method``."""
    if method not in METHODS:
        raise DataError(f"method {method!r}: one of {', '.join(METHODS)}")
    t = torch.as_tensor(np.asarray(label)).long()
    h, w = t.shape
    if factor == 1:
        return t.numpy().astype(np.int64)
    counts = _fractions(t, factor, num_classes, ignore_index)
    empty = counts.sum(0) == 0
    if method == "nearest":
        coarse = torch.where(empty, ignore_index, counts.argmax(0))
        return coarse.repeat_interleave(factor, 0).repeat_interleave(factor, 1)[:h, :w].numpy()
    fractions = counts / counts.sum(0, keepdim=True).clamp(min=1)
    ph, pw = counts.shape[1] * factor, counts.shape[2] * factor
    up = F.interpolate(fractions[None], size=(ph, pw), mode="bilinear", align_corners=False)[0, :, :h, :w]
    return up.argmax(0).numpy()


def upper_bounds(
    labels: Iterable[Any],
    num_classes: int,
    factors: Sequence[int] = (32, 16, 8),
    *,
    method: str = "bilinear",
    ignore_index: int = 255,
) -> dict[int, dict[str, Any]]:
    """The four metrics of the coarse ground truth against the ground truth, per factor.

    Args:
        labels: label maps ``(H, W)`` (NumPy arrays or tensors; values ``0..K-1`` and ``ignore_index``).
        factors: output strides to bound.
    """
    if any(int(f) < 1 for f in factors):
        raise DataError(f"strides {list(factors)}: each must be a positive integer")
    cms = {int(f): ConfusionMatrix(num_classes) for f in factors}
    n = 0
    for label in labels:
        arr = np.asarray(label)
        stray = (arr != ignore_index) & ((arr < 0) | (arr >= num_classes))
        if stray.any():
            raise DataError(
                f"label map {n}: values {sorted(set(arr[stray].tolist()))[:5]} outside 0..{num_classes - 1}"
            )
        for f, cm in cms.items():
            cm.update(coarse_labels(arr, f, num_classes, method=method, ignore_index=ignore_index), arr)
        n += 1
    if n == 0:
        raise DataError("no label maps to bound")
    return {f: {**cm.compute(), "images": n} for f, cm in cms.items()}
