"""Evaluation as the reference does it: whole images, argmax of the scores, one confusion matrix; fed by a
DataLoader, same-size images batched, the matrix kept on the device. Training evaluates with it on cadence and
``fcnseg eval`` with a checkpoint; :func:`write_grid` pictures a model's predictions on a dataset."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm import tqdm

from ..data.base import IGNORE_INDEX
from ..metrics import ConfusionMatrix, boundary_band
from ..preprocessing import Preprocessing

__all__ = ["UnpredictableLabels", "evaluate", "predict_batch", "to_device", "write_grid"]


class UnpredictableLabels:
    """Counts pixels whose label the model cannot predict (``>= K`` or negative, and not 255), per value.

    The metrics leave them out, as the reference's ``score.py`` does; this makes that visible instead of silent.
    Values 0…255 are counted one by one; anything else falls in one bin reported as ``-1``.
    """

    def __init__(self, num_classes: int, device: torch.device | str = "cpu") -> None:
        self.num_classes = num_classes
        self.bins = torch.zeros(257, dtype=torch.int64, device=device)

    def update(self, target: torch.Tensor) -> None:
        """Count ``target``'s unpredictable values (on its device, without a host synchronisation)."""
        t = target.reshape(-1).long().to(self.bins.device)
        bad = (t != IGNORE_INDEX) & ((t >= self.num_classes) | (t < 0))
        value = torch.where((t < 0) | (t > 255), 256, t)
        idx = torch.where(bad, value, 257)  # everything predictable goes to a last bin, dropped
        self.bins += torch.zeros(258, dtype=torch.int64, device=t.device).scatter_add_(0, idx, torch.ones_like(idx))[
            :257
        ]

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


def _same_size(samples: Iterable[Any], limit: int) -> Iterator[list[Any]]:
    """Consecutive samples grouped while their image and label sizes agree, at most ``limit`` per group."""
    group: list[Any] = []
    for sample in samples:
        if group and (len(group) == limit or _shapes(sample) != _shapes(group[0])):
            yield group
            group = []
        group.append(sample)
    if group:
        yield group


def _shapes(sample: Any) -> tuple:
    x, y = sample
    labels = tuple(tuple(v.shape) for v in y.values()) if isinstance(y, dict) else tuple(y.shape)
    return tuple(x.shape), labels


def _stack(group: list[Any], device: torch.device) -> tuple[torch.Tensor, Any]:
    """One batch on ``device``: each (pinned) sample copied without blocking, then stacked there (stacking on
    the host would build a pageable tensor, whose copy cannot overlap)."""

    def on(t: Any) -> torch.Tensor:
        return torch.as_tensor(t).as_subclass(torch.Tensor).to(device, non_blocking=True)

    x = torch.stack([on(s[0]) for s in group])
    first = group[0][1]
    if isinstance(first, dict):
        return x, {k: torch.stack([on(s[1][k]) for s in group]) for k in first}
    return x, torch.stack([on(s[1]) for s in group])


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
    batch_size: int = 1,
    workers: int = 0,
    dtype: torch.dtype | None = None,
    normalize: Preprocessing | None = None,
    band: int = 0,
) -> dict[str, Any]:
    """The four metrics (and per-class lists) over ``dataset``, whole images at their own size.

    Images come through a DataLoader (``workers`` processes; pinned memory and non-blocking copies on
    CUDA); consecutive images of the same size are scored together, up to ``batch_size`` (never padded:
    the reference's whole-image scores are kept); ``dtype`` scores under autocast; ``normalize`` applies a
    preprocessing on the device to a set that yields uint8 images; ``band > 0`` also scores the pixels within
    ``band`` px of an object edge (:func:`~fcnseg.metrics.boundary_band`) as ``boundary_mean_iu``. The
    confusion matrices are accumulated on the device without a host synchronisation per image.

    Under DDP each rank scores images ``rank, rank + world, …`` — every image exactly once, none padded
    in — and the confusion matrices are summed across ranks, so the result equals one process's.

    Returns:
        ``{head: scores}``, one entry per head (``""`` for a single-head model, whose ``num_classes`` is
        an int); ``engine/heads.py`` names, prints and saves them. Each has ``unpredictable_labels``: the
        pixels (and their label values) that are neither void nor a class of the model, which the metrics
        cannot count.
    """
    device = torch.device(device)
    was_training = model.training
    model.eval()
    heads = num_classes if isinstance(num_classes, dict) else {"": num_classes}
    matrices = {h: ConfusionMatrix(k, device) for h, k in heads.items()}
    outside = {h: UnpredictableLabels(k, device) for h, k in heads.items()}
    edges = {h: ConfusionMatrix(k, device) for h, k in heads.items()} if band > 0 else {}
    n = len(dataset) if max_images is None else min(len(dataset), max_images)  # type: ignore[arg-type]
    indices = list(range(rank, n, world))
    loader = DataLoader(
        Subset(dataset, indices), batch_size=None, num_workers=workers, pin_memory=device.type == "cuda"
    )
    shown = None if progress else True  # None: a bar on a terminal only, never into a file
    with tqdm(total=len(indices), desc="eval", disable=shown, leave=False) as bar:
        for group in _same_size(loader, batch_size):
            x, y = to_device(*_stack(group, device), device, normalize)
            with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                pred = predict_batch(model, x.float())
            for h, p in pred.items() if isinstance(pred, dict) else [("", pred)]:
                target = y[h] if isinstance(y, dict) else y
                matrices[h].update(p, target)
                outside[h].update(target)
                if band > 0:  # pixels away from an edge become void: counted without a host synchronisation
                    near = torch.stack([boundary_band(t, band) for t in target])
                    edges[h].update(p, torch.where(near, target, IGNORE_INDEX))
            bar.update(len(group))
    for m in (*matrices.values(), *outside.values(), *edges.values()):
        m.all_reduce()
    model.train(was_training)
    results = {
        h: m.compute() | {"confusion": m.hist.cpu().tolist(), "unpredictable_labels": outside[h].summary()}
        for h, m in matrices.items()
    }
    for h, m in edges.items():
        results[h]["boundary_mean_iu"] = m.compute()["mean_iu"]
    return results


def to_device(
    x: Tensor, y: Any, device: torch.device, pre: Preprocessing | None = None, sizes: Tensor | None = None
) -> tuple[Tensor, Any]:
    """Copy a batch to ``device`` without blocking; labels to int64 there; with ``pre``, normalise there.

    ``sizes`` (from :func:`uint8_collate`, on the host) marks each image's own extent: the padding beyond
    it is set to 0 after normalisation, as :func:`~fcnseg.data.transforms.pad_collate` pads normalised images.
    """
    x = x.to(device, non_blocking=True)
    y = (
        {k: v.to(device, non_blocking=True).long() for k, v in y.items()}
        if isinstance(y, dict)
        else (y.to(device, non_blocking=True).long())
    )
    if pre is not None:
        x = pre(x)
        if sizes is not None:
            h, w = x.shape[-2:]
            for i, (hi, wi) in enumerate(sizes.tolist()):  # a host tensor: no device sync
                if hi < h:
                    x[i, :, hi:] = 0
                if wi < w:
                    x[i, :, :, wi:] = 0
    return x, y


def write_grid(
    model: nn.Module, ds: Dataset, path: Path, pre: Any, classes: list[str], n: int, device: torch.device
) -> None:
    """``grid.png``: image | truth | prediction for the first ``n`` images of ``ds`` (several heads: the first)."""
    from ..viz import save_grid

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
