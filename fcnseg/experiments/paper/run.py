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
from ..miniature.run import _machine
from .parts import PART_FUNCTIONS
from .recipe import SCALES, PaperScale
from .report import write_report
from .runs import Trainer

__all__ = ["PART_NAMES", "run_paper"]

PART_NAMES = tuple(PART_FUNCTIONS)


def run_paper(
    out: str | Path = "runs/paper",
    *,
    parts: tuple[str, ...] | list[str] = PART_NAMES,
    scale: str | PaperScale = "demo",
    device: str = "cpu",
    report: str | Path | None = "docs",
    command: str = "",
    log: Any = print,
) -> dict[str, Any]:
    """Run ``parts`` (all by default) into ``out``; ``out/paper.json`` keeps every part run there so far.

    Runs shared by parts (FCN-32s and FCN-8s) are trained once; a part run again reuses runs whose config is
    unchanged. With ``report``, writes ``RESULTS-paper.md`` there and ``results/paper.json`` plus figures.
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
    result: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    trainer = Trainer(out, ps, device, log)
    t0 = time.perf_counter()
    for i, part in enumerate(parts):
        log(f"[{i + 1}/{len(parts)}] {part}")
        t = time.perf_counter()
        result[part] = PART_FUNCTIONS[part](trainer)
        result[part]["wall_s"] = time.perf_counter() - t
        for v in result[part]["verdicts"]:
            log(f"      {'reproduces' if v['reproduces'] else 'does not reproduce'}: {v['claim']}")
        result["meta"] = {"scale": scale if isinstance(scale, str) else "custom", "recipe": _recipe(ps),
                          "device": device, "machine": _machine(), "command": command,
                          "parts_in_last_command": list(parts), "wall_s": time.perf_counter() - t0}  # fmt: skip
        with atomic_write(path, "w") as f:  # after every part: a stopped run keeps what it finished
            json.dump(result, f, indent=1)
    if report is not None:
        write_report(result, path, Path(report), out)
    log(f"done in {(time.perf_counter() - t0) / 60:.1f} min; numbers in {path}")
    return result


def _recipe(ps: PaperScale) -> dict[str, Any]:
    d = asdict(ps)
    d["seg"] = {k: v for k, v in d["seg"].items() if not k.startswith("cls_")}
    return d
