"""Calibration images for a checkpoint: int8 activation ranges and the accuracy guard of reduced precisions.

A folder of the user's images, or images spread over the checkpoint's own training set (rebuilt from the config it
records): training images, never evaluation ones. Both are preprocessed as inference sees them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..data import get_dataset
from ..data.transforms import eval_transforms
from ..errors import ConfigError
from ..preprocessing import Preprocessing
from .checkpoint import CheckpointInfo, preprocessing_of

__all__ = ["calibration_images", "training_images"]


def training_images(info: Any, n: int) -> list[torch.Tensor]:
    """``n`` preprocessed images spread over a checkpoint's training set (as inference sees them).

    For calibrating int8 activations: training images, never the evaluation ones. Needs the
    checkpoint's training config (``info.config``) and its dataset on disk.
    """
    if not info.config:
        raise ConfigError("these weights carry no training config: give calibration images (a folder)")
    d = info.config.get("data", {})
    train = get_dataset(
        d["name"],
        d.get("root"),
        d.get("train_split", "train"),
        transforms=eval_transforms(preprocessing_of(info)),
        **d.get("options", {}),
    )
    step = max(1, len(train) // max(1, n))
    return [train[i][0] for i in range(0, len(train), step)][:n]


def calibration_images(
    info: CheckpointInfo | None, folder: str | Path | None = None, n: int = 32, *, pre: Preprocessing | None = None
) -> list[torch.Tensor]:
    """``n`` calibration tensors: the images of ``folder`` (preprocessed with ``pre``, default the checkpoint's), or
    the checkpoint's training set."""
    n = max(1, n)
    if folder:
        from ..imageio import IMAGE_SUFFIXES
        from ..io import read_image

        files = sorted(p for p in Path(folder).glob("*") if p.suffix.lower() in IMAGE_SUFFIXES)[:n]
        if not files:
            raise ConfigError(f"{folder}: no images to calibrate on")
        pre = pre or preprocessing_of(info)  # type: ignore[arg-type]
        return [pre(torch.from_numpy(read_image(f).transpose(2, 0, 1).copy())) for f in files]
    if info is None:
        raise ConfigError("a bare model has no training set to calibrate on: give a folder of images")
    return training_images(info, n)
