"""Training: ``fit`` (the reference's loop), its step, data path, mixed precision, DDP, resume and early stopping.

Training only: what inference shares with it (checkpoints, evaluation, heads, the machine's facts) lives in
:mod:`fcnseg.runtime`, and nothing here imports :mod:`fcnseg.inference`.
"""

from .build import build_datasets, build_model, init_backbone, init_from
from .early_stop import Plateau
from .logging import read_log
from .schedule import lr_at
from .trainer import TrainingDiverged, fit

__all__ = [
    "Plateau",
    "TrainingDiverged",
    "build_datasets",
    "build_model",
    "fit",
    "init_backbone",
    "init_from",
    "lr_at",
    "read_log",
]
