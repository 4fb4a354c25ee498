"""One optimizer step of a run: the loss (normalised over the global batch), gradient accumulation, the NaN guard.

:func:`train_step` sets the learning rate (a pure function of the step), runs ``train.iter_size`` forward/backward
passes (gradients accumulate and are averaged, as Caffe's ``iter_size``; DDP all-reduces on the last one only),
stops on a non-finite loss, and steps the optimizer.
"""

from __future__ import annotations

import contextlib
import math
from typing import TYPE_CHECKING, Any

import torch

from ..config import RunConfig
from ..errors import FCNError
from ..losses import LOSSES, dice_loss2d, pixel_loss_terms
from ..runtime.evaluation import to_device
from .amp import measured_scaler
from .distributed import DistInfo
from .loss_sampling import drop_cells, sampling_generator
from .schedule import lr_at

if TYPE_CHECKING:
    from .trainer import RunState

__all__ = ["TrainingDiverged", "train_step"]


class TrainingDiverged(FCNError, RuntimeError):
    """The loss became NaN or infinite."""


def _loss(out: Any, y: Any, cfg: RunConfig, dist: DistInfo, weight: torch.Tensor | None) -> torch.Tensor:
    """``train.loss`` (fp32), scaled so that DDP's gradient averaging gives the global loss.

    The one place a loss is normalised: the pixel term (cross-entropy or focal) comes as a sum and a
    denominator (labelled pixels, class-weighted when weights are given); when normalised, the sum is
    divided by the denominator of the *global* batch, then multiplied by the world size, which DDP's
    average undoes. The Dice term is per image.
    """
    tc = cfg.train
    loss, denominator = pixel_loss_terms(tc.loss, out, y, weight=weight, gamma=tc.focal_gamma)
    if tc.normalize:
        if dist.world > 1:
            torch.distributed.all_reduce(denominator)
        loss = loss / denominator.clamp(min=1e-12)
    loss = loss * dist.world
    if LOSSES[tc.loss].dice:
        heads = out.items() if isinstance(out, dict) else [("", out)]
        loss = loss + tc.dice_weight * sum(dice_loss2d(o, y[h] if isinstance(y, dict) else y) for h, o in heads)
    return loss


def _next_batch(run: RunState) -> tuple[torch.Tensor, Any]:
    item = next(run.batches)
    if run.on_device:  # uint8 from the workers: normalised on the device
        x, y, sizes = item
        return to_device(x, y, run.device, run.pre, sizes)
    return to_device(*item, run.device)


def _accumulate(run: RunState, step: int = 0) -> tuple[Any, int]:
    """``train.iter_size`` forward/backward passes (DDP all-reduces gradients on the last one only);
    the global loss (on the device) and the number of images the step saw."""
    cfg, tc, dist = run.cfg, run.cfg.train, run.dist
    total: Any = 0.0
    images = 0
    for i in range(tc.iter_size):
        x, y = _next_batch(run)
        if tc.loss_sampling < 1.0:
            y = drop_cells(y, tc.loss_sampling, sampling_generator(tc.seed, step, i, dist.rank))
        if tc.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if run.dtype is torch.float16 and run.scaler is None:  # measured on the first batch
            plain = lambda x=x, y=y: _loss(run.model(x), y, cfg, DistInfo(), run.weight)  # noqa: E731
            run.scaler = measured_scaler(run.model, plain, run.device, dist, tc.loss_scale)
        accumulating = dist.world > 1 and i < tc.iter_size - 1
        with run.ddp_model.no_sync() if accumulating else contextlib.nullcontext():  # type: ignore[operator]
            with torch.autocast(run.device.type, dtype=run.dtype or torch.float32, enabled=run.dtype is not None):
                out = run.ddp_model(x)
            loss = _loss(out, y, cfg, dist, run.weight) / tc.iter_size  # fp32: the losses cast the scores up
            (run.scaler.scale(loss) if run.scaler is not None else loss).backward()
        total += loss.detach() / dist.world  # this rank's share of the global loss, kept on the device
        images += x.shape[0] * dist.world
    if dist.world > 1:
        total = total.double()
        torch.distributed.all_reduce(total)
    return total, images


def train_step(run: RunState, step: int, *, read_loss: bool) -> tuple[Any, float]:
    """One optimizer step at ``step``: its loss (a float when read, else still on the device) and learning rate.

    Reading the loss on the host waits for the device; ``read_loss`` says when (always on the CPU, where it
    is free; on CUDA when it is logged: a NaN in between is caught there, and checkpoints refuse
    non-finite weights). A non-finite loss read raises :class:`TrainingDiverged`.
    """
    lr = lr_at(step, run.cfg.train)
    for group in run.optimizer.param_groups:
        group["lr"] = lr * group["lr_mult"]
    total, images = _accumulate(run, step)
    run.seen += images
    if read_loss:
        total = _checked(total, step, run)
    if run.scaler is not None:  # skips the step (and lowers the scale) if a gradient overflowed
        run.scaler.step(run.optimizer)
        run.scaler.update()
    else:
        run.optimizer.step()
    run.optimizer.zero_grad(set_to_none=True)
    return total, lr


def _checked(total: Any, step: int, run: RunState) -> float:
    tc = run.cfg.train
    total = float(total)
    if not math.isfinite(total):
        advice = "too high for the summed loss (the reference uses 1e-10…1e-14)" if not tc.normalize else "too high"
        raise TrainingDiverged(
            f"loss became {total} at step {step}: with train.normalize={tc.normalize}, learning rate {tc.lr:g} is "
            f"{advice}; the last good checkpoint is {run.run_dir / 'checkpoints' / 'last.safetensors'}"
        )
    return total
