"""``torchrun`` environment → process group; rank helpers. One process without torchrun."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import ConfigError

__all__ = ["DistInfo", "cleanup", "setup", "world_size"]


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


#: what a launcher (torchrun, SLURM with torchrun, mp.spawn with env://) sets beside WORLD_SIZE
LAUNCH_VARS = ("RANK", "MASTER_ADDR", "MASTER_PORT")


def world_size() -> int:
    """``WORLD_SIZE`` from the environment, checked: a stale value without a launcher is refused at once.

    Raises:
        ConfigError: WORLD_SIZE is not a positive integer, or is above 1 while RANK, MASTER_ADDR or
            MASTER_PORT is missing (without them the rendezvous would wait 30 minutes and time out).
    """
    raw = os.environ.get("WORLD_SIZE", "1")
    try:
        world = int(raw)
    except ValueError:
        world = 0
    if world < 1:
        raise ConfigError(f"WORLD_SIZE={raw!r} in the environment: expected a positive integer")
    missing = [v for v in LAUNCH_VARS if not os.environ.get(v)]
    if world > 1 and missing:
        raise ConfigError(
            f"WORLD_SIZE={world} is set but {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not: "
            "launch with torchrun (it sets them all), or unset WORLD_SIZE to run one process"
        )
    return world


def setup(device: torch.device) -> DistInfo:
    """Initialise the process group when launched by ``torchrun`` (gloo on CPU, nccl on CUDA)."""
    world = world_size()
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
