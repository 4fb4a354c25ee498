"""What training and inference share: checkpoints, opening a model, evaluation, heads, the machine's facts.

The layer under both :mod:`fcnseg.train` and :mod:`fcnseg.inference` (neither imports the other):

* :mod:`.checkpoint` — self-describing checkpoints, written atomically, validated before anything is allocated;
* :mod:`.model_source` — the model a command names (a checkpoint, or a registry name with weights);
* :mod:`.evaluation` — the reference's evaluation (whole images, one confusion matrix) and prediction grids;
* :mod:`.heads` — naming a net's heads and their classes, printing and saving their scores;
* :mod:`.hardware` — the CPU's units, devices, the launcher's process count, the machine fingerprint;
* :mod:`.calibration` — calibration images for reduced precisions.

Each name below is imported on first use: prediction needs checkpoints and heads, not the dataset readers that
evaluation imports (with torchvision and SciPy, ≈ 1.2 s of every command's start).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes

if TYPE_CHECKING:
    from .checkpoint import CheckpointInfo, load_checkpoint, load_state_dict_file, read_info, save_checkpoint
    from .evaluation import evaluate, predict_batch, write_grid
    from .hardware import resolve_device
    from .heads import FOUR, head_classes, main_scores, report, write_metrics

__all__ = [
    "FOUR",
    "CheckpointInfo",
    "evaluate",
    "head_classes",
    "load_checkpoint",
    "load_state_dict_file",
    "main_scores",
    "predict_batch",
    "read_info",
    "report",
    "resolve_device",
    "save_checkpoint",
    "write_grid",
    "write_metrics",
]

__getattr__, __dir__ = lazy_attributes(
    __name__,
    {
        **dict.fromkeys(
            ("CheckpointInfo", "load_checkpoint", "load_state_dict_file", "read_info", "save_checkpoint"), ".checkpoint"
        ),
        **dict.fromkeys(("evaluate", "predict_batch", "write_grid"), ".evaluation"),
        "resolve_device": ".hardware",
        **dict.fromkeys(("FOUR", "head_classes", "main_scores", "report", "write_metrics"), ".heads"),
    },
)
