"""Pixel losses: softmax cross-entropy (the reference's), focal loss and soft Dice.

Cross-entropy and focal loss are per pixel, summed (the reference's ``normalize: false``) or averaged
over labelled pixels. Dice is a per-image overlap ratio, always normalised. Every loss is computed in
fp32 whatever the autocast dtype of the scores, and void pixels (255) never count.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "LOSSES",
    "CrossEntropy2d",
    "Loss",
    "cross_entropy2d",
    "dice_loss2d",
    "focal_loss2d",
    "pixel_loss",
    "pixel_loss_terms",
]


@dataclass(frozen=True)
class Loss:
    """One value of ``train.loss``: its per-pixel term, whether the soft Dice term is added, and what it is."""

    name: str
    pixel: str  # "ce" | "focal": the per-pixel term (summed or averaged by train.normalize)
    dice: bool  # adds train.dice_weight × soft Dice (per image; needs train.normalize: true)
    summary: str


#: every ``train.loss``, by name: the config's choices and the trainer read this table
LOSSES: dict[str, Loss] = {
    loss.name: loss
    for loss in (
        Loss("ce", "ce", False, "softmax cross-entropy over labelled pixels (the reference's)"),
        Loss("focal", "focal", False, "focal loss (train.focal_gamma; 0 is cross-entropy)"),
        Loss("ce+dice", "ce", True, "cross-entropy plus train.dice_weight × soft Dice"),
        Loss("focal+dice", "focal", True, "focal loss plus train.dice_weight × soft Dice"),
    )
}


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


def focal_loss2d(
    logits: Tensor,
    target: Tensor,
    *,
    gamma: float = 2.0,
    ignore_index: int = 255,
    normalize: bool = True,
    weight: Tensor | None = None,
) -> Tensor:
    """Focal loss ``-w_t (1 - p_t)^gamma log p_t`` (Lin et al. 2017) summed or averaged over labelled pixels.

    ``gamma = 0`` is exactly :func:`cross_entropy2d`. With ``weight`` and ``normalize`` the average is
    weighted, as ``F.cross_entropy`` does it.
    """
    logp = F.log_softmax(logits.float(), dim=1)
    valid = target != ignore_index
    t = torch.where(valid, target, 0).long().unsqueeze(1)
    logp_t = logp.gather(1, t).squeeze(1)  # (N, H, W)
    loss = -((1 - logp_t.exp()).clamp(min=0) ** gamma) * logp_t if gamma else -logp_t
    w = weight[t.squeeze(1)] if weight is not None else torch.ones_like(loss)
    w = w * valid
    total = (loss * w).sum()
    return total / w.sum().clamp(min=1e-12) if normalize else total


def dice_loss2d(logits: Tensor, target: Tensor, *, ignore_index: int = 255, eps: float = 1.0) -> Tensor:
    """Soft Dice loss ``1 - mean_c (2 Σ p g + eps) / (Σ p + Σ g + eps)`` per image, averaged over the batch.

    Classes are those present in the image's labels or predicted; void pixels are left out of every sum.
    """
    probs = F.softmax(logits.float(), dim=1)  # (N, K, H, W)
    valid = (target != ignore_index).unsqueeze(1)
    onehot = F.one_hot(torch.where(valid.squeeze(1), target, 0).long(), logits.shape[1]).permute(0, 3, 1, 2)
    probs, onehot = probs * valid, onehot * valid
    inter = (probs * onehot).sum((2, 3))
    denom = probs.sum((2, 3)) + onehot.sum((2, 3))
    dice = (2 * inter + eps) / (denom + eps)  # (N, K)
    present = (onehot.sum((2, 3)) > 0) | (probs.sum((2, 3)) > 0.5)
    per_image = ((1 - dice) * present).sum(1) / present.sum(1).clamp(min=1)
    return per_image.mean()


def pixel_loss_terms(
    kind: str,
    logits: Tensor | Mapping[str, Tensor],
    target: Tensor | Mapping[str, Tensor],
    *,
    weight: Tensor | None = None,
    gamma: float = 2.0,
    ignore_index: int = 255,
) -> tuple[Tensor, Tensor]:
    """The per-pixel term of ``train.loss`` (any name of :data:`LOSSES`, or ``ce`` / ``focal``) as
    ``(sum, denominator)``.

    ``sum`` is the loss summed over labelled pixels (the reference's ``normalize: false``); ``denominator``
    is the number of labelled pixels, class-weighted when ``weight`` is given (as ``F.cross_entropy``
    weights its average). ``sum / denominator`` is the normalised loss; a trainer that normalises over a
    global (DDP) batch reduces the denominator first. Heads of a multi-task net add up in both terms.
    """
    if isinstance(logits, Mapping):
        assert isinstance(target, Mapping)
        terms = [pixel_loss_terms(kind, logits[k], target[k], gamma=gamma, ignore_index=ignore_index) for k in logits]
        return sum(t[0] for t in terms), sum(t[1] for t in terms)  # type: ignore[return-value]
    assert isinstance(target, Tensor)
    valid = target != ignore_index
    if weight is not None:
        denominator = weight[torch.where(valid, target, 0).long()].mul(valid).sum()
    else:
        denominator = valid.sum()
    denominator = denominator.to(torch.float32)  # on the device: no host sync
    if (LOSSES[kind].pixel if kind in LOSSES else kind) == "focal":
        total = focal_loss2d(logits, target, gamma=gamma, ignore_index=ignore_index, normalize=False, weight=weight)
    else:
        total = cross_entropy2d(logits, target, ignore_index=ignore_index, normalize=False, weight=weight)
    return total, denominator


def pixel_loss(
    kind: str,
    logits: Tensor | Mapping[str, Tensor],
    target: Tensor | Mapping[str, Tensor],
    *,
    normalize: bool,
    weight: Tensor | None = None,
    gamma: float = 2.0,
    ignore_index: int = 255,
) -> Tensor:
    """The per-pixel term of ``train.loss``, summed or averaged (each head over its own pixels); heads are summed."""
    if isinstance(logits, Mapping):
        assert isinstance(target, Mapping)
        return sum(
            pixel_loss(kind, logits[k], target[k], normalize=normalize, gamma=gamma, ignore_index=ignore_index)
            for k in logits
        )  # type: ignore[return-value]
    total, denominator = pixel_loss_terms(kind, logits, target, weight=weight, gamma=gamma, ignore_index=ignore_index)
    return total / denominator.clamp(min=1e-12) if normalize else total
