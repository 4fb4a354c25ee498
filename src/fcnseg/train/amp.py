"""Mixed precision for training: the autocast dtype, kept across resumes, and an fp16 loss scale measured.

``train.amp: auto`` (the default) trains in bf16 autocast on CPUs with native bf16 arithmetic and in fp32
everywhere else (:func:`amp_dtype` says why). The dtype a run resolved is recorded in its training state
and checkpoints; a resumed run keeps it (:func:`run_dtype`), on whatever machine it resumes.

bf16 needs no scaling. fp16 does, and the reference's summed loss gives weight gradients of 1e4–1e6, which
overflow fp16 at any scale >= 1: :func:`calibrate_loss_scale` runs one fp32 backward on the first batch and
picks the power of two that puts the largest gradient at 1/8 of fp16's range; ``GradScaler`` then adapts it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..config import RunConfig
from ..runtime import hardware
from .distributed import DistInfo

log = logging.getLogger("fcnseg")

__all__ = [
    "DTYPE_NAMES",
    "amp_dtype",
    "calibrate_loss_scale",
    "dtype_name",
    "measured_scaler",
    "restored_scaler",
    "run_dtype",
]

#: how training states and checkpoint metadata name the compute dtype of a run (float32: no autocast)
DTYPE_NAMES = ("float32", "bfloat16", "float16")


def amp_dtype(cfg: RunConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype ``train.amp`` resolves to on ``device`` (None: fp32, no autocast).

    ``"auto"``: bf16 on a CPU with native bf16 arithmetic (:func:`~fcnseg.runtime.hardware.has_bf16_units`:
    AMX-BF16 or AVX512-BF16, and oneDNN able to use it), where it measured 2.7× the fp32 step for
    fcn8s_vgg16 and 1.17× for the ResNet-18 recipe at a mean IU within the seed spread of fp32's
    (``docs/results/bench_train_amp.txt``, ``train_bf16.txt``). fp32 on CPUs without bf16 units, where
    oneDNN only emulates bf16 (more slowly than fp32, ``isa.py``), and on CUDA (and MPS): there AMP stays
    opt-in with ``amp: true``, because on CUDA it means fp16 with a loss scale (or bf16 by ``amp_dtype``)
    and no GPU recipe's accuracy has been measured against fp32. ``true``: bf16 on the CPU, fp16 on CUDA
    unless ``train.amp_dtype`` names one; ``false``: fp32. ``amp_dtype`` applies to ``true`` only.
    """
    amp = cfg.train.amp
    if amp == "auto":
        return torch.bfloat16 if device.type == "cpu" and hardware.has_bf16_units() else None
    if not amp:
        return None
    if cfg.train.amp_dtype != "auto":
        return getattr(torch, cfg.train.amp_dtype)
    return torch.float16 if device.type == "cuda" else torch.bfloat16


def dtype_name(dtype: torch.dtype | None) -> str:
    """``"float32"`` (no autocast), ``"bfloat16"`` or ``"float16"``: a run's compute dtype as records name it."""
    return "float32" if dtype is None else str(dtype).removeprefix("torch.")


def run_dtype(cfg: RunConfig, device: torch.device, dist: DistInfo, state: dict[str, Any]) -> torch.dtype | None:
    """The autocast dtype of this run: the one its training state recorded (a resume), else :func:`amp_dtype`.

    A resumed run keeps the precision it was trained in, also on a machine where ``train.amp`` would
    resolve otherwise (another CPU, a GPU, an edited ``amp``): numerics never change mid-run, and rank 0
    says so on stderr when the config would have chosen another dtype here. To change the precision,
    start a new run from the checkpoint (``model.init_from``). States written before the dtype was
    recorded resolve ``train.amp`` as a new run does. Under DDP, ``auto`` uses bf16 only when every rank
    has bf16 units (ranks of a mixed cluster must compute alike).
    """
    chosen = amp_dtype(cfg, device)
    if cfg.train.amp == "auto" and dist.world > 1 and device.type == "cpu":
        agreed = torch.tensor([0 if chosen is None else 1], device=device)
        torch.distributed.all_reduce(agreed, op=torch.distributed.ReduceOp.MIN)
        chosen = chosen if int(agreed.item()) else None
    recorded = state.get("amp_dtype")  # checked by resume.restore
    if recorded is None:
        return chosen
    kept = None if recorded == "float32" else getattr(torch, recorded)
    if kept != chosen and dist.main:
        amp = str(cfg.train.amp).lower()  # as YAML spells it
        log.info(
            "note: resuming in %s as this run was trained (train.amp=%s would choose %s on this %s); a new run from "
            "its checkpoint (model.init_from) can change the precision",
            recorded,
            amp,
            dtype_name(chosen),
            device.type,
        )
    return kept


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
