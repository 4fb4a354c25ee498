"""What a run leaves besides its checkpoints: ``metrics.json``, confusion pictures, ``curves.png``, ``grid.png``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from ..runtime.evaluation import write_grid
from ..runtime.heads import write_metrics
from .logging import plot_curves

__all__ = ["write_run_outputs"]


def write_run_outputs(
    run_dir: Path,
    metrics: Mapping[str, Any],
    names: Mapping[str, Sequence[str]],
    *,
    model: nn.Module,
    val_ds: Dataset,
    pre: Any,
    grid_images: int,
    device: torch.device,
    loss: tuple[str, bool] = ("ce", False),
) -> None:
    """``metrics.json`` and confusion pictures (each head with its classes), ``curves.png`` (``loss``: the run's
    ``train.loss`` and ``train.normalize``, which label its loss axis) and ``grid.png``."""
    write_metrics(run_dir, metrics, names)
    plot_curves(run_dir, *loss)
    write_grid(model, val_ds, run_dir / "grid.png", pre, list(next(iter(names.values()), [])), grid_images, device)
