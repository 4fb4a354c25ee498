"""Which device a process runs on, and the random state that goes with it.

* :func:`resolve_device` — ``auto`` (CUDA when present), ``cpu``, ``cuda``, ``cuda:N``, checked against this machine.
* :func:`local_device` — the same under a launcher: local rank ``N`` of a node takes ``cuda:N`` and makes it the
  current device (``torch.cuda.set_device``), so NCCL, cuDNN and the caching allocator all use that GPU.
* :func:`seed_run` — the CPU generator seeded alike on every rank (identical initial weights), each rank's CUDA
  generator seeded apart (different dropout masks on different images).
* :func:`rng_states` / :func:`restore_rng` — the CPU and CUDA generator states a checkpoint keeps, so a resumed
  run draws the numbers the uninterrupted one would have.
* :func:`inference_dtype` — bf16 autocast where the GPU supports it, else fp16; None (fp32) on the CPU.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from ..errors import CheckpointError, ConfigError

__all__ = [
    "cuda_seed",
    "inference_dtype",
    "local_device",
    "resolve_device",
    "restore_rng",
    "rng_states",
    "seed_run",
]


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``; a device that is not here is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"device {name!r}: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(f"device {name!r}: no CUDA device is available here; use cpu or auto")
        if device.index is not None and device.index >= count:
            raise ConfigError(f"device {name!r}: only {count} CUDA device(s) here (cuda:0 … cuda:{count - 1})")
    return device


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, str(default))
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} in the environment: expected an integer") from None


def local_device(name: str, world: int = 1) -> torch.device:
    """The device of this process: :func:`resolve_device`, then, under a launcher with CUDA, ``cuda:LOCAL_RANK``.

    With CUDA it also calls ``torch.cuda.set_device``, so that everything that uses "the current device"
    (NCCL's communicator, ``torch.cuda.*`` calls without an index, cuDNN handles) uses this process's GPU.

    Raises:
        ConfigError: ``cuda:N`` given while several processes share the node (every rank would take the same
            GPU and NCCL would stop with a duplicate-GPU error), or LOCAL_RANK beyond the node's GPUs.
    """
    device = resolve_device(name)
    if device.type != "cuda":
        return device
    if world > 1:
        local_rank = _env_int("LOCAL_RANK", 0)
        local_world = _env_int("LOCAL_WORLD_SIZE", world)
        count = torch.cuda.device_count()
        if device.index is not None and local_world > 1:
            raise ConfigError(
                f"device {name!r} with {local_world} processes on this node: every rank would use the same GPU; "
                "use cuda or auto (each local rank then takes cuda:LOCAL_RANK)"
            )
        if device.index is None:
            if local_rank >= count:
                raise ConfigError(
                    f"LOCAL_RANK={local_rank} but this node has {count} CUDA device(s): start at most {count} "
                    "processes per node (torchrun --nproc_per_node)"
                )
            device = torch.device("cuda", local_rank)
    if device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    torch.cuda.set_device(device)
    return device


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


def inference_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 on GPUs that support it (Ampere and later), fp16 on older ones, None (fp32) on the CPU."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
