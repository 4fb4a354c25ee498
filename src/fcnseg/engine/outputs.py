"""What a run leaves besides its checkpoints: ``metrics.json``, confusion pictures, ``curves.png``, ``grid.png``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from .heads import write_metrics
from .logging import plot_curves

__all__ = ["write_grid", "write_run_outputs"]


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
) -> None:
    """``metrics.json`` and confusion pictures (each head with its classes), ``curves.png`` and ``grid.png``."""
    write_metrics(run_dir, metrics, names)
    plot_curves(run_dir)
    write_grid(model, val_ds, run_dir / "grid.png", pre, list(next(iter(names.values()), [])), grid_images, device)


def write_grid(
    model: nn.Module, ds: Dataset, path: Path, pre: Any, classes: list[str], n: int, device: torch.device
) -> None:
    """``grid.png``: image | truth | prediction for the first ``n`` images of ``ds`` (several heads: the first)."""
    from ..viz import save_grid
    from .evaluator import predict_batch

    rows = []
    for i in range(min(n, len(ds))):  # type: ignore[arg-type]
        x, y = ds[i]
        x = torch.as_tensor(x).as_subclass(torch.Tensor)
        x = pre(x) if x.dtype == torch.uint8 else x  # a set normalised on the device holds raw images
        pred = predict_batch(model.eval(), x.unsqueeze(0).to(device).float())
        if isinstance(pred, dict):
            pred, y = pred[next(iter(pred))], y[next(iter(y))]
        image = pre.invert(torch.as_tensor(x)[:3].float()).permute(1, 2, 0).numpy()
        rows.append([image, torch.as_tensor(y).numpy(), pred[0].cpu().numpy()])
    if rows:
        save_grid(path, rows, titles=["image", "truth", "prediction"], classes=classes)
