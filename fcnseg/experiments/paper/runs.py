"""Train one run of the paper experiment (cached by its config), score it on held-out scenes, time it."""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ...config import RunConfig, dump_config, load_config
from ...engine.checkpoint import load_checkpoint
from ...engine.heads import FOUR
from ...engine.logging import read_log
from ...engine.trainer import TrainingDiverged, fit
from ...io import atomic_write
from ..demo import FINE_TUNE
from ..miniature.recipe import overrides
from ..miniature.run import evaluate_held_out
from .recipe import RUNS, PaperScale, Run, reference_lr

__all__ = ["Trainer", "foreground_mean_iu", "held_out", "run_config"]


def run_config(key: str, run: Run, ps: PaperScale, device: str, init: str | None, lr_multiplier: float) -> RunConfig:
    """The resolved config of run ``key``: the demo's modern recipe or the reference solver, plus the run's own keys.

    ``init``: the checkpoint to start from (a staged net), else the classifier. The reference solver is fcnseg's
    default training section (the release's: summed loss, SGD momentum 0.99, weight decay 5e-4, bias rate ×2,
    fixed rate, batch 1) with only the rate set, by :func:`~.recipe.reference_lr`.
    """
    sc = ps.seg
    start = [f"model.init_from={init}"] if init else [f"model.backbone_weights={ps.classifier}"]
    common = [*start, *run.extra, f"data.flip={str(run.flip).lower()}", "eval.grid_images=0"]
    if run.solver == "reference":
        steps = ps.ref_steps * run.stages
        every = max(1, ps.ref_steps // ps.curve_points)
        keys = [
            f"model.name={run.arch}", f"model.width={sc.width}", "model.pad100=false", "model.dropout=0",
            "data.name=synthetic", f"data.options={{n: {sc.seg_images}, size: {sc.seg_size}, cache: true}}",
            f"data.val_options={{n: {sc.val_images}}}", "data.preprocessing=imagenet", "data.batch_size=1",
            f"train.lr={reference_lr(run.arch, sc.seg_size, lr_multiplier):.6g}", f"train.max_iter={steps}",
            f"train.eval_every={every}", f"train.checkpoint_every={steps}", f"train.log_every={every}",
            f"train.device={device}",
        ]  # fmt: skip
        return load_config(None, [*keys, *common])
    factor = int(run.meta.get("factor", 0)) if run.meta else 0
    batch = ps.sampling_batch * factor if factor else sc.seg_batch
    every = max(1, sc.seg_steps // ps.curve_points)
    keys = [*overrides(sc, device, run.arch), *FINE_TUNE, f"data.batch_size={batch}",
            f"train.eval_every={every}", f"train.log_every={every}"]  # fmt: skip
    return load_config(None, [*keys, *common])


def _digest(cfg: RunConfig) -> str:
    return hashlib.sha256(dump_config(cfg).encode()).hexdigest()[:16]


def _finished(done: Path, digest: str) -> dict[str, Any] | None:
    """The record of a run trained with config ``digest``, or None (not trained, another config, or a damaged
    ``done.json``: then it is trained again and the file rewritten)."""
    try:
        data = json.loads(done.read_text())
    except (OSError, ValueError):
        return None
    ok = isinstance(data, dict) and data.get("config") == digest and isinstance(data.get("result"), dict)
    return data["result"] if ok else None


@dataclass
class Trainer:
    """Trains runs into ``out/KEY`` once: a run whose ``done.json`` records the same config is not retrained."""

    out: Path
    ps: PaperScale
    device: str
    log: Any = print
    trained: int = 0  # runs trained by this Trainer
    reused: int = 0  # runs found already trained with the same config

    def train(self, key: str, run: Run | None = None, *, init: str | None = None, lr_multiplier: float = 1.0,
              name: str | None = None) -> dict[str, Any]:  # fmt: skip
        """Train ``key`` (saved as ``name`` or ``key``); returns its record (``dir``, ``label``, ``curve``,
        ``train_s``, ``diverged`` …)."""
        run = run or RUNS[key]
        name = name or key
        init_path = str(self.out / init / "checkpoints" / "last.safetensors") if init else None
        cfg = run_config(key, run, self.ps, self.device, init_path, lr_multiplier)
        run_dir, digest = self.out / name, _digest(cfg)
        done = run_dir / "done.json"
        record = _finished(done, digest)
        if record is not None:
            self.log(f"    {name}: already trained with this config")
            self.reused += 1
            return record
        self.log(f"    {name}: {run.label} ({cfg.train.max_iter} steps, batch {cfg.data.batch_size}, "
                 f"{cfg.train.optimizer} lr {cfg.train.lr:.3g})")  # fmt: skip
        t = time.perf_counter()
        diverged = None
        try:
            fit(cfg, run_dir, progress=False)
        except TrainingDiverged as e:
            diverged = str(e).split(":")[0]
        rows = read_log(run_dir / "log.csv")
        curve = [{"step": int(r["step"]), "train_s": float(r["train_s"]), "mean_iu": float(r["mean_iu"])}
                 for r in rows if r.get("mean_iu")]  # fmt: skip
        losses = [float(r["loss"]) for r in rows if r.get("loss")]
        result = {"dir": str(run_dir), "label": run.label, "arch": run.arch, "steps": cfg.train.max_iter,
                  "batch": cfg.data.batch_size, "lr": cfg.train.lr, "curve": curve, "diverged": diverged,
                  "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None,
                  "train_s": curve[-1]["train_s"] if curve else time.perf_counter() - t,
                  "wall_s": time.perf_counter() - t}  # fmt: skip
        with atomic_write(done, "w") as f:
            json.dump({"config": digest, "result": result}, f, indent=1)
        self.trained += 1
        return result


def held_out(run_dir: str | Path, ps: PaperScale, device: str, *, mask_cue: str = "none") -> dict[str, Any]:
    """The four metrics, boundary mean IU and per-class IU of a run's final weights on the held-out scenes
    (split ``test``: never trained or selected on), optionally with a cue masked at test time."""
    model, _ = load_checkpoint(Path(run_dir) / "checkpoints" / "last.safetensors")
    scores, _ = evaluate_held_out(model, ps.seg, torch.device(device), mask_cue=mask_cue, grid=0)
    out = {k: float(scores[k]) for k in (*FOUR, "boundary_mean_iu")}
    out["iu"] = [None if not math.isfinite(v) else float(v) for v in scores["iu"]]
    return out


def foreground_mean_iu(metrics: dict[str, Any]) -> float:
    """Mean IU over the object classes only (class 0, background, left out), as PAMI Table 8 reports."""
    fg = [v for v in metrics["iu"][1:] if v is not None]
    return float(np.mean(fg)) if fg else float("nan")


@torch.inference_mode()
def forward_seconds(models: dict[str, nn.Module], size: int, repeats: int) -> dict[str, float]:
    """Median seconds of one forward pass on a ``size``-px image per model, timed round-robin (side by side, so
    that a noisy machine slows every model alike)."""
    x = torch.randn(1, 3, size, size)
    times: dict[str, list[float]] = {k: [] for k in models}
    for m in models.values():
        m.eval()(x)  # warm-up
    for _ in range(repeats):
        for key, m in models.items():
            t = time.perf_counter()
            m(x)
            times[key].append(time.perf_counter() - t)
    return {k: float(np.median(v)) for k, v in times.items()}
