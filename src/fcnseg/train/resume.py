"""Resuming across restarts: ``--resume auto`` and a global batch kept when the world size changes.

An elastic launcher (``torchrun --max-restarts``, a preempted SLURM job requeued) runs the same command
again, possibly with a different number of processes. ``--resume auto`` starts the run when its folder
has no checkpoint yet and resumes it otherwise. The training state records the world size and the global
batch (``data.batch_size × world × train.iter_size``); on resume with another world size the per-process
batch is recomputed so that the global batch, and with it the sequence of images each step sees
(:class:`~fcnseg.train.sampling.StepSampler` draws ``batch × world`` per micro-step), stays the same. A world
size that does not divide it is refused, naming the sizes that would.
The state also records the run's autocast dtype, which a resume keeps (:func:`~fcnseg.train.amp.run_dtype`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path
from typing import Any

import torch

from ..config import RunConfig
from ..errors import CheckpointError, ConfigError
from ..runtime.checkpoint import load_into, load_state_dict_file, load_training_state, read_info
from .amp import DTYPE_NAMES

__all__ = ["batch_record", "has_checkpoint", "keep_global_batch", "rescaled", "restore"]


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
        tried = range(1, min(global_batch, 1 << 20) + 1)
        fits = [w for w in tried if global_batch % (w * cfg.train.iter_size) == 0]
        raise ConfigError(
            f"{where}: trained with a global batch of {global_batch} on {old_world} process(es); {world} "
            f"process(es) × train.iter_size {cfg.train.iter_size} cannot make {global_batch} images per step. "
            f"Resume with a world size of {', '.join(map(str, fits[:8]))}"
        )
    batch = global_batch // per_step
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, batch_size=batch))


def restore(model: torch.nn.Module, optimizer: torch.optim.Optimizer, path: Path) -> tuple[int, float, dict[str, Any]]:
    """Load weights and optimizer from checkpoint ``path``; the step, the best mean IU and the whole training state."""
    weights = path.with_suffix(".safetensors")
    if not weights.is_file():
        raise CheckpointError(
            f"{weights}: no checkpoint to resume from in {path.parent.parent} (--resume auto starts one)"
        )
    info = read_info(weights)
    state = _checked_state(load_training_state(path, info.step), weights)  # the state written with these weights
    if state["step"] != info.step:
        raise CheckpointError(
            f"{weights}: weights are from step {info.step} but the training state from step {state['step']}"
        )
    load_into(model, load_state_dict_file(weights), weights)
    _same_optimizer(state["optimizer"], optimizer, weights)
    try:
        optimizer.load_state_dict(state["optimizer"])
    except (ValueError, KeyError, TypeError, RuntimeError) as e:
        raise CheckpointError(f"{weights}: training state does not fit this optimizer ({e})") from None
    return info.step, float(state.get("best_mean_iu") or -1.0), state


def _optimizer_name(groups: Any) -> str | None:
    """``sgd`` or ``adamw`` from a saved optimizer's parameter groups (AdamW's have betas, SGD's momentum)."""
    first = groups[0] if isinstance(groups, list) and groups and isinstance(groups[0], dict) else {}
    return "adamw" if "betas" in first else "sgd" if "momentum" in first else None


def _same_optimizer(saved: dict[str, Any], optimizer: torch.optim.Optimizer, weights: Path) -> None:
    """Refuse a state of another optimizer (SGD's momentum buffers into AdamW failed at the first step)."""
    before = _optimizer_name(saved.get("param_groups"))
    now = _optimizer_name(optimizer.state_dict()["param_groups"])
    if before and now and before != now:
        raise ConfigError(
            f"train.optimizer: {now}, but {weights} was trained with {before}; resume with train.optimizer={before}, "
            f"or start a new run from these weights (model.init_from={weights})"
        )


def _checked_state(state: Any, weights: Path) -> dict[str, Any]:
    """The training state's fields, with their types checked (it is a file a user can hand us)."""
    checks = {
        "step": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
        "optimizer": lambda v: isinstance(v, dict) and {"state", "param_groups"} <= set(v),
        "rng": lambda v: isinstance(v, torch.Tensor) and v.dtype == torch.uint8,
    }
    if not isinstance(state, dict):
        raise CheckpointError(f"{weights}: malformed training state (a {type(state).__name__}, not a mapping)")
    for key, ok in checks.items():
        if key not in state or not ok(state[key]):
            raise CheckpointError(f"{weights}: malformed training state: field {key!r} missing or of the wrong type")
    for key in ("best_mean_iu", "best_score"):
        best = state.get(key)
        if best is not None and not (isinstance(best, (int, float)) and math.isfinite(best)):
            raise CheckpointError(f"{weights}: malformed training state: {key} {best!r}")
    for key, top in (("world", 1 << 20), ("global_batch", 1 << 40)):
        value = state.get(key)
        if value is not None and not (isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= top):
            raise CheckpointError(f"{weights}: malformed training state: {key} {value!r} (expected 1..{top})")
    if state.get("scaler") is not None and not isinstance(state["scaler"], dict):
        raise CheckpointError(f"{weights}: malformed training state: scaler is not a mapping")
    if state.get("amp_dtype") is not None and state["amp_dtype"] not in DTYPE_NAMES:
        raise CheckpointError(
            f"{weights}: malformed training state: amp_dtype {state['amp_dtype']!r} is not one "
            f"of {', '.join(DTYPE_NAMES)}"
        )
    return state


def rescaled(cfg: RunConfig, state: dict[str, Any], world: int, main: bool, where: Path) -> RunConfig:
    """``cfg`` with the per-process batch that keeps the recorded global batch (a note says so on the main rank)."""
    new = keep_global_batch(cfg, state, world, where)
    if new.data.batch_size != cfg.data.batch_size and main:
        logging.getLogger("fcnseg").info(
            "note: resuming on %d process(es) (trained on %s): data.batch_size %d → %d keeps the global batch of %s",
            world,
            state["world"],
            cfg.data.batch_size,
            new.data.batch_size,
            state["global_batch"],
        )
    return new
