"""Resuming across restarts: ``--resume auto`` and a global batch kept when the world size changes.

An elastic launcher (``torchrun --max-restarts``, a preempted SLURM job requeued) runs the same command
again, possibly with a different number of processes. ``--resume auto`` starts the run when its folder
has no checkpoint yet and resumes it otherwise. The training state records the world size and the global
batch (``data.batch_size × world × train.iter_size``); on resume with another world size the per-process
batch is recomputed so that the global batch, and with it the sequence of images each step sees
(:class:`~fcnseg.engine.trainer.StepSampler` draws ``batch × world`` per micro-step), stays the same. A world
size that does not divide it is refused, naming the sizes that would.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ..config import RunConfig
from ..errors import ConfigError

__all__ = ["batch_record", "has_checkpoint", "keep_global_batch"]


def has_checkpoint(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds a checkpoint to resume from (``checkpoints/last.safetensors``)."""
    return (Path(run_dir) / "checkpoints" / "last.safetensors").is_file()


def batch_record(cfg: RunConfig, world: int) -> dict[str, int]:
    """What the training state records about the batch: ``{"world": …, "global_batch": …}``."""
    return {"world": world, "global_batch": cfg.data.batch_size * world * cfg.train.iter_size}


def keep_global_batch(cfg: RunConfig, state: dict[str, Any], world: int, where: Any) -> RunConfig:
    """``cfg`` with ``data.batch_size`` set so that the global batch equals the one ``state`` was trained with.

    States written before the world size was recorded, or at the same world size, leave ``cfg`` unchanged.

    Raises:
        ConfigError: the recorded global batch is not a multiple of ``world × train.iter_size``.
    """
    old_world, global_batch = state.get("world"), state.get("global_batch")
    if not isinstance(old_world, int) or not isinstance(global_batch, int) or old_world == world:
        return cfg
    per_step = world * cfg.train.iter_size
    if global_batch % per_step:
        fits = [w for w in range(1, global_batch + 1) if global_batch % (w * cfg.train.iter_size) == 0]
        raise ConfigError(
            f"{where}: trained with a global batch of {global_batch} on {old_world} process(es); {world} "
            f"process(es) × train.iter_size {cfg.train.iter_size} cannot make {global_batch} images per step. "
            f"Resume with a world size of {', '.join(map(str, fits[:8]))}"
        )
    batch = global_batch // per_step
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, batch_size=batch))
