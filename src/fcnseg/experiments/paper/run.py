"""Run the paper experiment's parts into one folder and one JSON; write the report."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from ...errors import ConfigError
from ...io import atomic_write
from ..pool import machine
from .parts import PART_FUNCTIONS
from .progress import progress_line
from .recipe import PART_NAMES, SCALES, PaperScale
from .report import write_report
from .runs import Trainer

__all__ = ["PART_NAMES", "run_paper"]


def run_paper(
    out: str | Path = "runs/paper",
    *,
    parts: tuple[str, ...] | list[str] = PART_NAMES,
    scale: str | PaperScale = "converged",
    device: str = "cpu",
    seeds: tuple[int, ...] | list[int] = (),
    jobs: int = 1,
    report: str | Path | None = "docs",
    command: str = "",
    log: Any = print,
) -> dict[str, Any]:
    """Run ``parts`` (all by default) into ``out``; ``out/paper.json`` keeps every part run there so far.

    Every run is trained to its validation plateau once per seed (``seeds``, default the scale's), ``jobs`` runs at
    a time in child processes. Runs shared by parts (FCN-32s and FCN-8s) are trained once; a part run again reuses
    runs whose config is unchanged, and a run stopped part way resumes from its last checkpoint. With ``report``,
    writes the paper section of ``RESULTS.md`` there and ``results/paper.json`` plus figures. A ``paper.json`` in
    ``out`` that is not one (unreadable JSON) is a one-line ConfigError.
    """
    unknown = [p for p in parts if p not in PART_FUNCTIONS]
    if unknown:
        raise ConfigError(f"--part {unknown[0]}: expected one of {', '.join(PART_NAMES)}")
    ps = SCALES[scale] if isinstance(scale, str) else scale
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: no CUDA device is available here; use --device cpu")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "paper.json"
    result = _previous(path)
    trainer = Trainer(out, ps, device, log, jobs=max(1, jobs), seeds=tuple(seeds))
    history = _history(result.get("meta", {}))
    t0 = time.perf_counter()
    for i, part in enumerate(parts):
        log(f"[{i + 1}/{len(parts)}] {part} · {progress_line(trainer, parts[i:], t0)}")
        t = time.perf_counter()
        result[part] = PART_FUNCTIONS[part](trainer)
        result[part]["wall_s"] = time.perf_counter() - t
        for v in result[part]["verdicts"]:
            log(f"      {v['verdict']}: {v['claim']}")
        this = {
            "command": command,
            "parts": list(parts[: i + 1]),
            "wall_s": time.perf_counter() - t0,
            "runs_trained": trainer.trained,
            "runs_reused": trainer.reused,
            "jobs": trainer.jobs,
        }
        result["meta"] = {
            "scale": scale if isinstance(scale, str) else "custom",
            "recipe": _recipe(ps),
            "seeds": list(trainer.seeds),
            "device": device,
            "machine": machine(),
            "command": command,
            "parts_in_last_command": list(parts),
            "wall_s": this["wall_s"],
            "history": [*history, this],
        }
        with atomic_write(path, "w") as f:  # after every part: a stopped run keeps what it finished
            json.dump(result, f, indent=1)
    if report is not None:
        write_report(result, path, Path(report), out)
    log(f"done in {(time.perf_counter() - t0) / 60:.1f} min; numbers in {path}")
    return result


def _previous(path: Path) -> dict[str, Any]:
    """What an earlier command wrote to ``paper.json`` (nothing yet: empty)."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: not a paper.json this experiment wrote (unreadable JSON); move it or give another --out"
        )
    return data


def _history(meta: dict[str, Any]) -> list[dict[str, Any]]:
    """The commands that produced ``paper.json`` so far, oldest first (one entry per command)."""
    if "history" in meta:
        return list(meta["history"])
    if meta:  # written before the history was kept: its one command
        return [
            {
                "command": meta.get("command", ""),
                "parts": meta.get("parts_in_last_command", []),
                "wall_s": meta.get("wall_s", 0.0),
                "runs_trained": None,
                "runs_reused": None,
            }
        ]
    return []


def _recipe(ps: PaperScale) -> dict[str, Any]:
    d = asdict(ps)
    d["seg"] = {k: v for k, v in d["seg"].items() if not k.startswith("cls_")}
    return d
