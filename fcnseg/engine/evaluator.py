"""Evaluation as the reference does it: whole images, argmax of the scores, one confusion matrix."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset
from tqdm import tqdm

from ..data.base import IGNORE_INDEX
from ..metrics import ConfusionMatrix

__all__ = ["UnpredictableLabels", "evaluate", "predict_batch"]


class UnpredictableLabels:
    """Counts pixels whose label the model cannot predict (``>= K`` or negative, and not 255), per value.

    The metrics leave them out, as the reference's ``score.py`` does; this makes that visible instead of silent.
    Values 0…255 are counted one by one; anything else falls in one bin reported as ``-1``.
    """

    def __init__(self, num_classes: int, device: torch.device | str = "cpu") -> None:
        self.num_classes = num_classes
        self.bins = torch.zeros(257, dtype=torch.int64, device=device)

    def update(self, target: torch.Tensor) -> None:
        t = target.reshape(-1).long().to(self.bins.device)
        bad = t[(t != IGNORE_INDEX) & ((t >= self.num_classes) | (t < 0))]
        if bad.numel():
            self.bins += torch.bincount(torch.where((bad < 0) | (bad > 255), 256, bad), minlength=257)

    def all_reduce(self) -> None:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(self.bins)

    def summary(self) -> dict[str, Any]:
        """``{"pixels": N, "values": [...]}`` (``-1`` stands for values outside 0…255)."""
        values = [v if v < 256 else -1 for v in torch.nonzero(self.bins).flatten().tolist()]
        return {"pixels": int(self.bins.sum()), "values": values}


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
        ``scores(hist)`` for a single-head model; ``{head: scores}`` for a multi-head model. Each has
        ``unpredictable_labels``: the pixels (and their label values) that are neither void nor a class
        of the model, which the metrics cannot count.
    """
    was_training = model.training
    model.eval()
    heads = num_classes if isinstance(num_classes, dict) else {"": num_classes}
    matrices = {h: ConfusionMatrix(k, device) for h, k in heads.items()}
    outside = {h: UnpredictableLabels(k, device) for h, k in heads.items()}
    n = len(dataset) if max_images is None else min(len(dataset), max_images)  # type: ignore[arg-type]
    indices = range(rank, n, world)
    for i in tqdm(indices, desc="eval", disable=not progress, leave=False):
        x, y = dataset[i]
        pred = predict_batch(model, torch.as_tensor(x).unsqueeze(0).to(device).float())
        if isinstance(pred, dict):
            for h, p in pred.items():
                matrices[h].update(p[0], torch.as_tensor(y[h]).to(device))
                outside[h].update(torch.as_tensor(y[h]))
        else:
            matrices[""].update(pred[0], torch.as_tensor(y).to(device))
            outside[""].update(torch.as_tensor(y))
    for m in (*matrices.values(), *outside.values()):
        m.all_reduce()
    model.train(was_training)
    results = {
        h: m.compute() | {"confusion": m.hist.cpu().tolist(), "unpredictable_labels": outside[h].summary()}
        for h, m in matrices.items()
    }
    return results[""] if list(results) == [""] else results
