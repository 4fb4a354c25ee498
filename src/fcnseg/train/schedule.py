"""Learning rate as a pure function of the step (testable without an optimizer)."""

from __future__ import annotations

from ..config import TrainConfig
from ..errors import ConfigError

__all__ = ["lr_at"]


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Base learning rate at ``step``: ``fixed`` (the reference), ``poly`` or ``step``.

    Example:
        >>> from fcnseg.config import TrainConfig
        >>> lr_at(50, TrainConfig(lr=1e-2, schedule="poly", poly_power=1.0, max_iter=100))
        0.005
    """
    if cfg.schedule == "fixed":
        return cfg.lr
    if cfg.schedule == "poly":
        return cfg.lr * (1 - min(step, cfg.max_iter) / cfg.max_iter) ** cfg.poly_power
    if cfg.schedule == "step":
        if cfg.step_size <= 0:
            raise ConfigError("train.step_size must be > 0 with schedule: step")
        return cfg.lr * cfg.step_gamma ** (step // cfg.step_size)
    raise ConfigError(f"train.schedule: expected fixed, poly or step, got {cfg.schedule!r}")
