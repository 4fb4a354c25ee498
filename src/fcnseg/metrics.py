"""The paper's four metrics over a confusion matrix, exactly as the reference ``score.py`` computes them.

``hist[i, j]`` counts pixels of true class ``i`` predicted as ``j`` (labels outside ``[0, K)``, i.e. the
255 void label, are skipped). With ``diag = hist.diagonal()``:

* pixel accuracy   = Σ diag / Σ hist
* mean accuracy    = nanmean(diag / hist.sum(1))
* mean IU          = nanmean(diag / (hist.sum(1) + hist.sum(0) − diag))
* f.w. IU          = Σ_{freq > 0} freq · IU, freq = hist.sum(1) / Σ hist

A class with no ground truth and no prediction is NaN and skipped; one predicted but absent from the
ground truth has IU 0. Every function takes NumPy arrays as well as tensors (the reference ``score.py``
works on NumPy); results are Python floats, tensors where a function returns per-pixel or per-class values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

#: what the functions here take: a tensor or a NumPy array
ArrayLike = Tensor | np.ndarray

__all__ = [
    "ConfusionMatrix",
    "boundary_band",
    "confusion_matrix",
    "fw_iu",
    "mean_accuracy",
    "mean_iu",
    "named",
    "pixel_accuracy",
    "scores",
]


def _t(x: ArrayLike) -> Tensor:
    """A tensor of ``x``; arrays and anything array-like (a PIL image) are copied when read-only, which
    ``torch.from_numpy`` warns about (``np.asarray`` of a PIL image is read-only)."""
    if isinstance(x, Tensor):
        return x
    a = np.asarray(x)
    return torch.from_numpy(np.array(a) if not a.flags.writeable else np.ascontiguousarray(a))


def confusion_matrix(pred: ArrayLike, target: ArrayLike, num_classes: int) -> Tensor:
    """``(K, K)`` int64 counts of (true, predicted) pairs over pixels whose label is in ``[0, K)``.

    Built on the inputs' device without a host synchronisation (no boolean indexing; on CUDA a scatter-add),
    so evaluation can accumulate it image after image while the GPU runs ahead.

    Example:
        >>> confusion_matrix(torch.tensor([0, 1, 1, 0]), torch.tensor([0, 1, 0, 255]), 2).tolist()
        [[1, 1], [0, 1]]
        >>> import numpy as np
        >>> confusion_matrix(np.array([0, 1, 1, 0]), np.array([0, 1, 0, 255]), 2).tolist()
        [[1, 1], [0, 1]]
    """
    target = _t(target).reshape(-1).long()
    pred = _t(pred).reshape(-1).long()
    k2 = num_classes * num_classes
    keep = (target >= 0) & (target < num_classes)
    idx = torch.where(keep, num_classes * target + pred, k2)  # the rest counted in one extra bin, then dropped
    if idx.device.type == "cpu":
        counts = torch.bincount(idx, minlength=k2 + 1)
    else:  # no host sync: CUDA's bincount reads the maximum back to size its output; a scatter does not
        counts = torch.zeros(k2 + 1, dtype=torch.int64, device=idx.device).scatter_add_(0, idx, torch.ones_like(idx))
    return counts[:k2].reshape(num_classes, num_classes)


def _f(hist: ArrayLike) -> Tensor:
    return _t(hist).double()


def pixel_accuracy(hist: ArrayLike) -> float:
    h = _f(hist)
    return float(h.diagonal().sum() / h.sum())


def per_class_accuracy(hist: ArrayLike) -> Tensor:
    h = _f(hist)
    return h.diagonal() / h.sum(1)


def per_class_iu(hist: ArrayLike) -> Tensor:
    h = _f(hist)
    return h.diagonal() / (h.sum(1) + h.sum(0) - h.diagonal())


def mean_accuracy(hist: ArrayLike) -> float:
    return float(per_class_accuracy(hist).nanmean())


def mean_iu(hist: ArrayLike) -> float:
    return float(per_class_iu(hist).nanmean())


def fw_iu(hist: ArrayLike) -> float:
    h = _f(hist)
    freq = h.sum(1) / h.sum()
    iu = per_class_iu(hist)
    present = freq > 0
    return float((freq[present] * iu[present]).sum())


def scores(hist: ArrayLike) -> dict[str, float | list[float]]:
    """All four metrics plus per-class ``iu`` and ``accuracy`` lists (NaN for absent classes)."""
    return {
        "pixel_accuracy": pixel_accuracy(hist),
        "mean_accuracy": mean_accuracy(hist),
        "mean_iu": mean_iu(hist),
        "fw_iu": fw_iu(hist),
        "iu": per_class_iu(hist).tolist(),
        "accuracy": per_class_accuracy(hist).tolist(),
    }


def named(metrics: dict[str, Any], classes: Sequence[str]) -> dict[str, Any]:
    """``metrics`` plus ``per_class``: ``{name: {"iu": …, "accuracy": …}}`` (None for a class absent from the truth).

    The ``iu`` and ``accuracy`` lists stay as they are; this puts each class's name next to its numbers.
    """
    if "iu" not in metrics:
        return dict(metrics)
    names = [classes[i] if i < len(classes) else f"class_{i}" for i in range(len(metrics["iu"]))]
    clean = lambda v: None if v != v else float(v)  # noqa: E731  (NaN: class absent)
    per = {
        n: {"iu": clean(iu), "accuracy": clean(acc)}
        for n, iu, acc in zip(names, metrics["iu"], metrics["accuracy"], strict=True)
    }
    return {**metrics, "per_class": per}


class ConfusionMatrix:
    """Accumulates a confusion matrix over batches; ``all_reduce`` sums it across DDP ranks."""

    def __init__(self, num_classes: int, device: torch.device | str = "cpu") -> None:
        self.num_classes = num_classes
        self.hist = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)

    def update(self, pred: ArrayLike, target: ArrayLike) -> None:
        """Add the pixels of one batch: predicted and true labels of the same shape (tensors or NumPy arrays)."""
        device = self.hist.device
        self.hist += confusion_matrix(_t(pred).to(device), _t(target).to(device), self.num_classes)

    def all_reduce(self) -> None:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(self.hist)

    def compute(self) -> dict[str, float | list[float]]:
        return scores(self.hist)


def boundary_band(target: ArrayLike, width: int, ignore_index: int = 255) -> Tensor:
    """Pixels within ``width`` px (chessboard distance) of an object edge in ``target`` ``(H, W)``.

    An edge is where two 4-neighbours differ (void borders included). Scoring only these pixels (the
    "trimap" of Kohli et al., used by the boundary analyses of segmentation papers) measures how fine
    the predicted boundaries are: what a finer output stride should improve. Void pixels stay void.

    Example:
        >>> t = torch.zeros(1, 8, dtype=torch.long); t[0, 4:] = 1
        >>> boundary_band(t, 1).int().tolist()
        [[0, 0, 1, 1, 1, 1, 0, 0]]
    """
    t = _t(target).long()
    edge = torch.zeros_like(t, dtype=torch.bool)
    dy, dx = t[1:] != t[:-1], t[:, 1:] != t[:, :-1]
    edge[1:] |= dy
    edge[:-1] |= dy
    edge[:, 1:] |= dx
    edge[:, :-1] |= dx
    k = 2 * width + 1
    band = torch.nn.functional.max_pool2d(edge[None, None].float(), k, stride=1, padding=width)[0, 0] > 0
    return band & (t != ignore_index)
