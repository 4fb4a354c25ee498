"""Mixed precision for training: the autocast dtype and an fp16 loss scale measured, not assumed.

bf16 needs no scaling. fp16 does, and the reference's summed loss gives weight gradients of 1e4–1e6, which
overflow fp16 at any scale >= 1: :func:`calibrate_loss_scale` runs one fp32 backward on the first batch and
picks the power of two that puts the largest gradient at 1/8 of fp16's range; ``GradScaler`` then adapts it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..config import RunConfig
from .distributed import DistInfo

__all__ = ["amp_dtype", "calibrate_loss_scale", "measured_scaler", "restored_scaler"]


def amp_dtype(cfg: RunConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``train.amp`` (None when off): bf16 on CPU, fp16 on CUDA unless set."""
    if not cfg.train.amp:
        return None
    if cfg.train.amp_dtype != "auto":
        return getattr(torch, cfg.train.amp_dtype)
    return torch.float16 if device.type == "cuda" else torch.bfloat16


def calibrate_loss_scale(model: nn.Module, loss_fn: Callable[[], torch.Tensor], headroom: float = 2.0**-3) -> float:
    """An fp16 loss scale measured on one batch: the largest power of two that keeps gradients in range.

    ``loss_fn()`` runs one forward and returns the fp32 loss; its backward here is fp32. The summed
    reference loss makes weight gradients of 1e4–1e6 (why its learning rate is 1e-10), past fp16's
    65504, while the normalised loss makes them tiny, near fp16's underflow (6e-8). The scale puts
    the largest gradient at ``headroom × 65504`` (default 1/8, room for later batches; ``GradScaler`` then
    adjusts it dynamically), so the fp16 gradients of both recipes neither overflow nor underflow. The
    loss and the SGD update stay fp32, so a 1e-14 learning rate and momentum 0.99 lose nothing.
    """
    with torch.random.fork_rng(devices=[]):  # dropout draws here must not shift the run's random stream
        loss_fn().backward()
    peak = max((float(p.grad.abs().max()) for p in model.parameters() if p.grad is not None), default=0.0)
    model.zero_grad(set_to_none=True)
    if not math.isfinite(peak) or peak == 0.0:
        return 2.0**16  # GradScaler's own default
    return float(2.0 ** min(24, math.floor(math.log2(headroom * 65504.0 / peak))))


def measured_scaler(
    model: nn.Module, loss_fn: Callable[[], torch.Tensor], device: torch.device, dist: DistInfo, scale: float | None
) -> torch.amp.GradScaler:
    """A ``GradScaler`` starting at ``scale`` (``train.loss_scale``) or at the one measured on ``loss_fn``'s batch.

    Under DDP every rank starts from the smallest rank's scale: ranks must scale alike, or the gradient
    average is wrong.
    """
    scale = scale or calibrate_loss_scale(model, loss_fn)
    if dist.world > 1:
        shared = torch.tensor([scale], device=device)
        torch.distributed.all_reduce(shared, op=torch.distributed.ReduceOp.MIN)
        scale = float(shared.item())
    return torch.amp.GradScaler(device.type, init_scale=scale)


def restored_scaler(state: dict[str, Any], dtype: torch.dtype | None, device: torch.device) -> Any:
    """The ``GradScaler`` a training state recorded (fp16 runs), or None (then one is measured on the next batch)."""
    if dtype is not torch.float16 or not state.get("scaler"):
        return None
    scaler = torch.amp.GradScaler(device.type)
    scaler.load_state_dict(state["scaler"])
    return scaler
