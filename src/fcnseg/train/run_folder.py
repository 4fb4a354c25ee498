"""Which folder a run may train into: a new or empty one, its own with ``resume``, an earlier one with ``overwrite``.

A fresh run (no ``resume``) into a folder that already holds a run (a ``config.yaml``, checkpoints) is refused:
``--resume`` continues that run, ``--overwrite`` starts it again (the earlier run's outputs are removed first, so
no stale ``best.safetensors`` or log rows outlive it). A folder holding files fcnseg did not write is refused
unless ``overwrite``. The run folder is never an input: not the data root or inside it, and with ``overwrite`` it
must not hold the weights the run starts from. The rule is :mod:`fcnseg.writes`'; the folder's ledger records
that ``train`` made it.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..config import RunConfig
from ..errors import ConfigError, DataError, printable
from ..writes import Ledger, claim_folder, real_path, refuse_overlap

__all__ = ["RUN_FILES", "claim_run_folder", "clear_run"]

#: what a run writes at the top of its folder (checkpoints/ and tb/ hold the rest)
RUN_FILES = (
    "config.yaml",
    "log.csv",
    "metrics.json",
    "summary.json",
    "curves.png",
    "grid.png",
    "class_weights.json",
)


def _inputs(cfg: RunConfig) -> list[str]:
    """The files and folders a run reads: its data root and the weights it starts from."""
    found = [cfg.data.root, cfg.model.init_from, cfg.model.backbone_weights]
    return [str(p) for p in found if isinstance(p, str) and p and os.path.exists(p)]


def _earlier_run(run_dir: Path) -> str | None:
    """What shows that ``run_dir`` holds a run already (for the refusal), or None."""
    if (run_dir / "checkpoints" / "last.safetensors").exists():
        return "its checkpoints/last.safetensors"
    if (run_dir / "config.yaml").exists():
        return "its config.yaml"
    if any((run_dir / "checkpoints").glob("*.safetensors")) if (run_dir / "checkpoints").is_dir() else False:
        return "checkpoints"
    return None


def claim_run_folder(cfg: RunConfig, run_dir: Path, *, resume: bool, overwrite: bool = False) -> None:
    """Claim ``run_dir`` for a run of ``cfg`` (see the module docstring); with ``resume`` it is the run's own.

    Raises:
        ConfigError: the folder holds a run or files fcnseg did not write (without ``overwrite``), or overlaps an
            input.
    """
    inputs = _inputs(cfg)
    try:
        refuse_overlap(run_dir, inputs, folder=True)
        if resume:
            Ledger(run_dir).mark_owner("train")
            return
        earlier = _earlier_run(run_dir) if run_dir.is_dir() else None
        if earlier and not overwrite:
            raise ConfigError(
                f"--out {printable(run_dir)}: holds a run already ({earlier}); --resume {printable(run_dir)} "
                "continues it, --overwrite starts it again, or choose a new folder"
            )
        ledger = claim_folder(run_dir, kind="train", inputs=inputs, overwrite=overwrite, fresh=True)
    except DataError as e:
        raise ConfigError(str(e)) from None
    if earlier and overwrite:
        inside = [p for p in inputs if real_path(run_dir) in real_path(p).parents]
        if inside:
            raise ConfigError(
                f"--out {printable(run_dir)}: holds {printable(inside[0])}, which this run reads; --overwrite would "
                "remove it. Copy it elsewhere first, or choose a new folder"
            )
        if ledger.owner == "train":
            clear_run(run_dir)


def clear_run(run_dir: Path) -> list[Path]:
    """Remove what an earlier run wrote in ``run_dir`` (its files by name, its checkpoints, its TensorBoard events),
    nothing else; returns what went."""
    gone = [run_dir / name for name in RUN_FILES]
    gone += list(run_dir.glob("confusion*.png"))
    ckpt = run_dir / "checkpoints"
    if ckpt.is_dir():
        gone += [*ckpt.glob("*.safetensors"), *ckpt.glob("*.state-*.pt")]
    tb = run_dir / "tb"
    if tb.is_dir():
        gone += list(tb.glob("events.out.tfevents.*"))
    removed = []
    for path in gone:
        if path.is_file() or path.is_symlink():
            path.unlink()
            removed.append(path)
    return removed
