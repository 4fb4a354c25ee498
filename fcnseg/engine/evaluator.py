"""Evaluation as the reference does it: whole images, argmax of the scores, one confusion matrix."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset
from tqdm import tqdm

from ..metrics import ConfusionMatrix

__all__ = ["evaluate", "predict_batch"]


@torch.inference_mode()
def predict_batch(model: nn.Module, x: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
    """Argmax labels ``(N, H, W)`` (or a dict per head) for preprocessed images ``(N, C, H, W)``."""
    out = model(x)
    if isinstance(out, dict):
        return {k: v.argmax(1) for k, v in out.items()}
    return out.argmax(1)


def evaluate(
    model: nn.Module,
    dataset: Dataset,
    num_classes: int | dict[str, int],
    *,
    device: torch.device | str = "cpu",
    rank: int = 0,
    world: int = 1,
    max_images: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """The four metrics (and per-class lists) over ``dataset``, one image at a time at its own size.

    Under DDP each rank scores images ``rank, rank + world, …`` — every image exactly once, none padded
    in — and the confusion matrices are summed across ranks, so the result equals one process's.

    Returns:
        ``scores(hist)`` for a single-head model; ``{head: scores}`` for a multi-head model.
    """
    was_training = model.training
    model.eval()
    heads = num_classes if isinstance(num_classes, dict) else {"": num_classes}
    matrices = {h: ConfusionMatrix(k, device) for h, k in heads.items()}
    n = len(dataset) if max_images is None else min(len(dataset), max_images)  # type: ignore[arg-type]
    indices = range(rank, n, world)
    for i in tqdm(indices, desc="eval", disable=not progress, leave=False):
        x, y = dataset[i]
        pred = predict_batch(model, torch.as_tensor(x).unsqueeze(0).to(device).float())
        if isinstance(pred, dict):
            for h, p in pred.items():
                matrices[h].update(p[0], torch.as_tensor(y[h]).to(device))
        else:
            matrices[""].update(pred[0], torch.as_tensor(y).to(device))
    for m in matrices.values():
        m.all_reduce()
    model.train(was_training)
    results = {h: m.compute() | {"confusion": m.hist.cpu().tolist()} for h, m in matrices.items()}
    return results[""] if list(results) == [""] else results
