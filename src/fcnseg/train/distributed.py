"""``torchrun`` environment → process group; the DDP wrapper; rank helpers. One process without torchrun.

On CUDA each local rank runs on ``cuda:LOCAL_RANK`` (:func:`fcnseg.runtime.hardware.local_device`), the NCCL
group is bound to that device (``device_id``: the communicator is created at once, on the right GPU), and
DDP gets ``device_ids=[LOCAL_RANK]``. Fixed bilinear upsampling kernels are buffers that never change, so
DDP is told to leave them out of its per-step buffer broadcast.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from ..errors import ConfigError
from ..runtime.hardware import world_size

__all__ = ["DistInfo", "cleanup", "fixed_buffers", "setup", "wrap_ddp"]


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup(device: torch.device, timeout_s: float = 600.0) -> DistInfo:
    """Initialise the process group when launched by ``torchrun``: gloo on the CPU; on CUDA, NCCL bound to
    ``device`` (the process's ``cuda:LOCAL_RANK``, already current). ``timeout_s`` bounds every collective."""
    world = world_size()
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        timeout = timedelta(seconds=timeout_s)
        if device.type == "cuda":
            dist.init_process_group("nccl", timeout=timeout, device_id=device)
        else:
            dist.init_process_group("gloo", timeout=timeout)
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def fixed_buffers(model: nn.Module) -> list[str]:
    """Names of the fixed bilinear upsampling buffers (the kernel and its grouped copy): constant, identical
    on every rank by construction, so never worth a broadcast."""
    from ..models.layers import BilinearUpsample

    names = []
    for prefix, module in model.named_modules():
        if isinstance(module, BilinearUpsample):
            for name, _ in module.named_buffers(recurse=False):
                names.append(f"{prefix}.{name}" if prefix else name)
    return names


def wrap_ddp(model: nn.Module, device: torch.device, *, sync_bn: bool = False) -> nn.Module:
    """``DistributedDataParallel(model)`` for ``device``; BatchNorm converted to SyncBatchNorm when asked.

    ``device_ids=[i]`` on ``cuda:i`` (one GPU per process); the fixed upsampling buffers are left out of
    DDP's broadcasts; the remaining buffers (BatchNorm running statistics) are broadcast from rank 0 each
    step unless SyncBatchNorm already keeps them equal.

    Raises:
        ConfigError: ``sync_bn`` on the CPU (SyncBatchNorm runs on CUDA only).
    """
    if sync_bn:
        if device.type != "cuda":
            raise ConfigError("train.sync_bn: SyncBatchNorm needs CUDA devices; set train.sync_bn=false on the CPU")
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ignored = fixed_buffers(model)
    nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(model, ignored)
    others = [n for n, _ in model.named_buffers() if n not in set(ignored)]
    kwargs: dict[str, Any] = (
        {"device_ids": [device.index], "output_device": device.index} if device.type == "cuda" else {}
    )
    sync = bool(others) and not sync_bn
    # torch ≥ 2.14 renamed broadcast_buffers (a FutureWarning on every run otherwise); the fixed buffers are equal on
    # every rank, so the new name's sync at construction changes nothing
    params = inspect.signature(nn.parallel.DistributedDataParallel.__init__).parameters
    kwargs["forward_sync_buffers" if "forward_sync_buffers" in params else "broadcast_buffers"] = sync
    return nn.parallel.DistributedDataParallel(model, **kwargs)


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
