"""How far the paper experiment is: runs done and left for the parts still to run, and the time left at the pace of
the runs trained so far in the same folder."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from .recipe import PARTS
from .runs import Trainer

__all__ = ["planned_runs", "progress_line"]


def planned_runs(tr: Trainer, parts: list[str] | tuple[str, ...]) -> set[tuple[str, int]]:
    """``(run name, seed)`` of every run ``parts`` train (the reference sweep included)."""
    names: set[str] = set()
    for part in parts:
        names.update(PARTS.get(part, ()))
        if part == "reference_sgd":
            names.update(f"ref32_x{m}" for m in tr.ps.sweep)
    return {(n, s) for n in names for s in tr.seeds}


def _done_wall(path: Path) -> float | None:
    """The wall seconds a finished run took (its ``done.json``), None when it is not finished."""
    try:
        data = json.loads(path.read_text())
        return float(data["result"]["wall_s"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def progress_line(tr: Trainer, parts: list[str] | tuple[str, ...], started: float) -> str:
    """``"31 of 66 runs done, 35 to train: about 2.4 h at 8.3 min per run, 2 at a time"`` (what is left)."""
    planned = planned_runs(tr, parts)
    walls = [w for p in tr.out.glob("*/seed*/done.json") if (w := _done_wall(p)) is not None]
    done = sum(1 for n, s in planned if _done_wall(tr.run_dir(n, s) / "done.json") is not None)  # damaged: retrained
    left = len(planned) - done
    text = f"{done} of {len(planned)} runs done, {left} to train"
    if left and walls:
        per_run = sum(walls) / len(walls)
        text += f": about {left * per_run / max(1, tr.jobs) / 3600:.1f} h at {per_run / 60:.1f} min per run"
        text += f", {tr.jobs} at a time" if tr.jobs > 1 else ""
    elif left:
        text += " (time per run: known once one has finished)"
    return text + f"; {(time.perf_counter() - started) / 60:.0f} min so far in this command"


def summary_counts(result: dict[str, Any]) -> dict[str, int]:
    """How many verdicts of each kind ``result`` holds (``reproduces``, ``does not reproduce``, ``inconclusive``)."""
    counts: dict[str, int] = {}
    for key, part in result.items():
        if key == "meta" or not isinstance(part, dict):
            continue
        for v in part.get("verdicts", []):
            counts[v["verdict"]] = counts.get(v["verdict"], 0) + 1
    return counts
