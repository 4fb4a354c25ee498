"""Per-class loss weights against class imbalance: given, or computed from the training set's pixels.

``train.class_weights`` is a list (one weight per class), ``inverse_frequency`` (``w_c = 1 / (K' f_c)``,
where ``f_c`` is class ``c``'s share of labelled pixels and ``K'`` the number of classes present, so that
the average weight of a labelled pixel is 1 and the loss keeps its scale) or ``median_frequency``
(``w_c = median(f) / f_c``, Eigen & Fergus 2015). Frequencies are counted exactly as
``fcnseg data check`` counts them (every training mask, before augmentation). A class absent from the
training set gets weight 0: it is never a target, so its weight never enters the loss.
"""

from __future__ import annotations

import typing
from collections.abc import Sequence

import numpy as np

from ..config import Weighting
from ..data.base import SegmentationDataset
from ..data.check import check_dataset
from ..errors import ConfigError, DataError

__all__ = ["WEIGHTINGS", "class_weights", "frequency_weights"]

WEIGHTINGS: tuple[str, ...] = typing.get_args(Weighting)


def frequency_weights(freq: np.ndarray, mode: str) -> np.ndarray:
    """Weights from class pixel shares ``freq`` (summing to 1) by ``mode`` (one of :data:`WEIGHTINGS`).

    Example:
        >>> frequency_weights(np.array([0.75, 0.25]), "inverse_frequency").round(3).tolist()
        [0.667, 2.0]
    """
    freq = np.asarray(freq, dtype=np.float64)
    present = freq > 0
    if not present.any():
        raise DataError("no labelled pixel in the training set: cannot weight classes by frequency")
    weights = np.zeros_like(freq)
    if mode == "inverse_frequency":
        weights[present] = 1.0 / (present.sum() * freq[present])
    elif mode == "median_frequency":
        weights[present] = np.median(freq[present]) / freq[present]
    else:
        raise ConfigError(f"train.class_weights: unknown weighting {mode!r}; use a list or one of {WEIGHTINGS}")
    return weights


def class_weights(
    spec: Sequence[float] | str | None, train_ds: SegmentationDataset, num_classes: int
) -> np.ndarray | None:
    """The weight vector for ``spec`` (see the module docstring), checked against ``num_classes``."""
    if spec is None:
        return None
    if isinstance(spec, str):
        if spec not in WEIGHTINGS:
            raise ConfigError(f"train.class_weights: unknown weighting {spec!r}; use a list or one of {WEIGHTINGS}")
        report = check_dataset(train_ds)
        if not report.ok:
            raise DataError("cannot count class frequencies:", details=report.problems[:10])
        counts = report.class_pixels[""]
        counts = np.pad(counts, (0, max(0, num_classes - len(counts))))[:num_classes]
        return frequency_weights(counts / max(1, counts.sum()), spec)
    weights = np.asarray(list(spec), dtype=np.float64)
    if weights.shape != (num_classes,) or not np.isfinite(weights).all() or (weights < 0).any():
        raise ConfigError(
            f"train.class_weights: need {num_classes} finite non-negative weights (one per class), got {list(spec)}"
        )
    return weights
