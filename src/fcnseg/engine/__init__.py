"""Training and evaluation: ``fit``, ``evaluate``, checkpoints, schedules, DDP helpers."""

from .checkpoint import CheckpointInfo, load_checkpoint, save_checkpoint
from .evaluator import evaluate
from .schedule import lr_at
from .trainer import fit

__all__ = ["CheckpointInfo", "evaluate", "fit", "load_checkpoint", "lr_at", "save_checkpoint"]
