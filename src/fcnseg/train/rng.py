"""The random state of a training run: the generators seeded per rank, and their states kept in checkpoints.

* :func:`seed_run` — the CPU generator seeded alike on every rank (identical initial weights), each rank's CUDA
  generator seeded apart (different dropout masks on different images).
* :func:`rng_states` / :func:`restore_rng` — the CPU and CUDA generator states a checkpoint keeps, so a resumed
  run draws the numbers the uninterrupted one would have.
"""

from __future__ import annotations

from typing import Any

import torch

from ..errors import CheckpointError

__all__ = ["cuda_seed", "restore_rng", "rng_states", "seed_run"]


def cuda_seed(seed: int, rank: int) -> int:
    """Rank ``rank``'s CUDA seed: apart from every other rank's, a pure function of ``(seed, rank)``."""
    return (seed * 1_000_003 + 7919 * (rank + 1)) % 2**63


def seed_run(seed: int, rank: int, device: torch.device) -> None:
    """The CPU generator seeded with ``seed`` on every rank; this rank's CUDA generator with :func:`cuda_seed`.

    Model initialisation draws from the CPU generator, so every rank builds the same weights; dropout on the
    GPU draws from the CUDA one, so ranks do not drop the same units of different images.
    """
    torch.manual_seed(seed)  # also seeds every CUDA device with ``seed``
    if device.type == "cuda":
        torch.cuda.manual_seed(cuda_seed(seed, rank))


def rng_states(device: torch.device, world: int = 1) -> dict[str, Any]:
    """``{"rng": CPU state, "cuda_rng": [state of rank 0, 1, …]}`` (no ``cuda_rng`` off CUDA).

    Under DDP every rank must call it (the CUDA states are gathered to every rank).
    """
    out: dict[str, Any] = {"rng": torch.get_rng_state()}
    if device.type == "cuda":
        mine = torch.cuda.get_rng_state(device)
        if world > 1:
            import torch.distributed as dist

            mine = mine.to(device)  # NCCL gathers device tensors; 16 bytes, at checkpoints only
            gathered = [torch.empty_like(mine) for _ in range(world)]
            dist.all_gather(gathered, mine)
            out["cuda_rng"] = [g.cpu() for g in gathered]
        else:
            out["cuda_rng"] = [mine]
    return out


def restore_rng(state: dict[str, Any], device: torch.device, rank: int, where: Any) -> None:
    """Set the generators from a training state written by :func:`rng_states` (CUDA: this rank's entry)."""
    try:
        torch.set_rng_state(state["rng"])
    except (RuntimeError, KeyError, TypeError) as e:
        raise CheckpointError(f"{where}: malformed training state: rng ({e})") from None
    saved = state.get("cuda_rng")
    if device.type != "cuda" or not saved:
        return  # a CPU run, or a state written on the CPU: the CUDA generator keeps its seed_run value
    if not isinstance(saved, list) or rank >= len(saved) or not isinstance(saved[rank], torch.Tensor):
        raise CheckpointError(f"{where}: malformed training state: cuda_rng has no entry for rank {rank}")
    torch.cuda.set_rng_state(saved[rank], device)
