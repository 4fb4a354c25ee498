"""Pixel-wise softmax cross-entropy, summed (the reference's ``normalize: false``) or averaged."""

from __future__ import annotations

from collections.abc import Mapping

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["CrossEntropy2d", "cross_entropy2d"]


def cross_entropy2d(
    logits: Tensor | Mapping[str, Tensor],
    target: Tensor | Mapping[str, Tensor],
    *,
    ignore_index: int = 255,
    normalize: bool = True,
    weight: Tensor | None = None,
) -> Tensor:
    """Cross-entropy over every labelled pixel of ``(N, K, H, W)`` scores and ``(N, H, W)`` labels.

    Args:
        normalize: average over labelled pixels (modern recipe); False sums them as the reference
            solvers do (``normalize: false``, which is why their learning rates are 1e-10…1e-14).
        weight: optional per-class weights.

    Dict inputs (multi-task nets) give the sum of the per-head losses.
    """
    if isinstance(logits, Mapping):
        assert isinstance(target, Mapping)
        return sum(
            cross_entropy2d(logits[k], target[k], ignore_index=ignore_index, normalize=normalize) for k in logits
        )  # type: ignore[return-value]
    assert isinstance(target, Tensor)
    reduction = "mean" if normalize else "sum"
    loss = F.cross_entropy(logits.float(), target.long(), weight=weight, ignore_index=ignore_index, reduction=reduction)
    if normalize and bool((target == ignore_index).all()):
        return logits.sum() * 0.0  # no labelled pixel: zero loss instead of NaN
    return loss


class CrossEntropy2d(nn.Module):
    """Module form of :func:`cross_entropy2d`."""

    def __init__(self, *, ignore_index: int = 255, normalize: bool = True) -> None:
        super().__init__()
        self.ignore_index, self.normalize = ignore_index, normalize

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return cross_entropy2d(logits, target, ignore_index=self.ignore_index, normalize=self.normalize)
