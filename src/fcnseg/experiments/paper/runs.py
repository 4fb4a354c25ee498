"""Train the paper experiment's runs once per seed (cached by their config), score them on held-out scenes, time
them.

A run ``KEY`` with seed ``S`` lives in ``OUT/KEY/seedS``. Its ``done.json`` records a digest of its config (the
values that differ from fcnseg's defaults, so a new config key with a default keeps old runs valid); a run whose
``done.json`` matches is reused, a run stopped part way (a killed session) resumes from its last checkpoint, and
runs are trained side by side in child processes (:mod:`..pool`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ...config import RunConfig, load_config
from ...io import atomic_write
from ...runtime import FOUR, load_checkpoint
from ...train import read_log
from ..heldout import evaluate_held_out
from ..pool import Job, fit_all
from ..scale import FINE_TUNE, overrides
from .recipe import RUNS, PaperScale, Run, reference_lr

__all__ = ["Request", "Trainer", "config_digest", "foreground_mean_iu", "held_out", "joined", "run_overrides"]


def run_overrides(
    run: Run, ps: PaperScale, device: str, init: str | None, lr_multiplier: float, seed: int
) -> list[str]:
    """The ``--set`` overrides of one run: the demo's modern recipe or the reference solver, the run's own keys,
    its seed, trained to its plateau.

    ``init``: the checkpoint to start from (a staged net), else the classifier. The reference solver is fcnseg's
    default training section (the release's: summed loss, SGD momentum 0.99, weight decay 5e-4, bias rate ×2,
    fixed rate, batch 1) with only the rate set, by :func:`~.recipe.reference_lr`.
    """
    sc = ps.seg
    start = [f"model.init_from={init}"] if init else [f"model.backbone_weights={ps.classifier}"]
    start = [] if run.init == "random" else start  # from scratch: no pretrained weights at all
    common = [*start, *run.extra, f"data.flip={str(run.flip).lower()}", "eval.grid_images=0", f"train.seed={seed}"]
    if run.solver == "reference":
        keys = [
            f"model.name={run.arch}",
            f"model.width={sc.width}",
            "model.pad100=false",
            "model.dropout=0",
            "data.name=synthetic",
            f"data.options={{n: {sc.seg_images}, size: {sc.seg_size}, cache: true}}",
            f"data.val_options={{n: {sc.val_images}}}",
            "data.preprocessing=imagenet",
            "data.batch_size=1",
            f"train.lr={reference_lr(run.arch, sc.seg_size, lr_multiplier):.6g}",
            f"train.device={device}",
        ]
        return [*keys, *ps.plateau_keys(reference=True, stages=run.stages), *common]
    factor = int(run.meta.get("factor", 0)) if run.meta else 0
    batch = ps.sampling_batch * factor if factor else sc.seg_batch
    return [
        *overrides(sc, device, run.arch),
        *FINE_TUNE,
        f"data.batch_size={batch}",
        *ps.plateau_keys(stages=run.stages),
        *common,
    ]


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


#: keys of nested records added after finished runs recorded their digests, left out at these values (a record
#: that is None by default, like ``train.early_stop``, lists every field of a config that sets it)
_ADDED_AT = {"train.early_stop.min_steps": 0}


def config_digest(cfg: RunConfig) -> str:
    """A digest of the config's values that differ from the defaults (stable when keys with defaults are added)."""
    default = _flat(RunConfig().to_dict())
    diff = {
        k: v
        for k, v in _flat(cfg.to_dict()).items()
        if default.get(k, ...) != v and not (k in _ADDED_AT and _ADDED_AT[k] == v)
    }
    return hashlib.sha256(json.dumps(diff, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Digests:
    """A run's config digest, and the digest of the same config without ``train.early_stop.min_steps`` (None when
    it has none): a run trained without that floor that ended at or after it (or has not ended) went exactly as it
    would with it, so it is kept rather than trained again."""

    config: str
    without_floor: str | None = None
    floor: int = 0

    @classmethod
    def of(cls, keys: list[str]) -> Digests:
        cfg = load_config(None, keys)
        rule = cfg.train.early_stop
        if rule is None or not rule.min_steps:
            return cls(config_digest(cfg))
        floorless = dataclasses.replace(rule, min_steps=0)
        floorless = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, early_stop=floorless))
        return cls(config_digest(cfg), config_digest(floorless), rule.min_steps)

    def matches(self, digest: object, ended_at: int | None = None) -> bool:
        """``digest`` is this config's, or the floorless one's for a run that ended at ``ended_at`` ≥ the floor
        (None: not ended yet)."""
        if digest == self.config:
            return True
        return digest == self.without_floor and (ended_at is None or ended_at >= self.floor)


def _finished(done: Path, digests: Digests) -> dict[str, Any] | None:
    """The record of a run trained with this config (:class:`Digests`), or None (not trained, another config, or a
    damaged ``done.json``: then it is trained again and the file rewritten)."""
    try:
        data = json.loads(done.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("result"), dict):
        return None
    steps = data["result"].get("steps")
    ok = digests.matches(data.get("config"), steps if isinstance(steps, int) else -1)
    return data["result"] if ok else None


def _resumable(run_dir: Path, digests: Digests) -> bool:
    """Whether ``run_dir`` holds a stopped run of this config to resume; a run of another config is cleared."""
    cfg_file, last = run_dir / "config.yaml", run_dir / "checkpoints" / "last.safetensors"
    if not cfg_file.is_file():
        return False
    try:
        same = digests.matches(config_digest(load_config(cfg_file)))
    except Exception:  # an unreadable config of ours: train afresh
        same = False
    if same and last.is_file():
        return True
    shutil.rmtree(run_dir)  # the experiment's own folder (it holds the config.yaml it wrote): start it again
    return False


@dataclass(frozen=True)
class Request:
    """One run to train: ``key`` of :data:`~.recipe.RUNS`, its seed, the run it starts from (same seed), the
    reference solver's rate multiplier, and the name it is saved under (default ``key``)."""

    key: str
    seed: int
    init: str | None = None
    lr_multiplier: float = 1.0
    name: str | None = None

    @property
    def saved_as(self) -> str:
        return self.name or self.key


@dataclass
class Trainer:
    """Trains runs into ``out/NAME/seedS`` once each, ``jobs`` at a time."""

    out: Path
    ps: PaperScale
    device: str
    log: Any = print
    jobs: int = 1
    seeds: tuple[int, ...] = ()  # default: the scale's
    trained: int = 0  # runs trained by this Trainer
    reused: int = 0  # runs found already trained with the same config
    wall: list[float] = field(default_factory=list)  # wall seconds of the runs trained here

    def __post_init__(self) -> None:
        self.seeds = tuple(self.seeds) or self.ps.seeds

    def run_dir(self, name: str, seed: int) -> Path:
        return self.out / name / f"seed{seed}"

    def _job(self, req: Request) -> tuple[Job, Digests]:
        run = RUNS[req.key]
        init = str(self.run_dir(req.init, req.seed) / "checkpoints" / "best.safetensors") if req.init else None
        keys = tuple(run_overrides(run, self.ps, self.device, init, req.lr_multiplier, req.seed))
        run_dir = self.run_dir(req.saved_as, req.seed)
        return Job(keys, str(run_dir)), Digests.of(list(keys))

    def train_many(self, requests: list[Request]) -> dict[tuple[str, int], dict[str, Any]]:
        """Train every request not yet trained (side by side); ``{(name, seed): record}`` for all of them."""
        records: dict[tuple[str, int], dict[str, Any]] = {}
        todo: list[tuple[Request, Job, Digests]] = []
        for req in requests:
            job, digest = self._job(req)
            record = _finished(Path(job.run_dir) / "done.json", digest)
            if record is not None and (Path(job.run_dir) / "log.csv").is_file():  # its numbers read afresh
                record = self._record(req, Path(job.run_dir), record.get("diverged"), float(record.get("wall_s", 0)))
            if record is not None:
                self.reused += 1
                records[(req.saved_as, req.seed)] = record
            else:
                resume = _resumable(Path(job.run_dir), digest)
                todo.append((req, Job(job.overrides, job.run_dir, resume), digest))
        if todo:
            self.log(
                f"    training {len(todo)} run(s), {min(self.jobs, len(todo))} at a time: "
                + ", ".join(f"{r.saved_as}/seed{r.seed}" for r, _, _ in todo)
            )
        started = {job.run_dir: time.perf_counter() for _, job, _ in todo}
        by_dir = {job.run_dir: (req, digest) for req, job, digest in todo}

        def finished(job: Job, diverged: str | None) -> None:
            req, digest = by_dir[job.run_dir]
            record = self._record(req, Path(job.run_dir), diverged, time.perf_counter() - started[job.run_dir])
            with atomic_write(Path(job.run_dir) / "done.json", "w") as f:
                json.dump({"config": digest.config, "result": record}, f, indent=1)
            records[(req.saved_as, req.seed)] = record
            self.trained += 1
            self.wall.append(record["wall_s"])
            self.log(
                f"      {req.saved_as}/seed{req.seed}: {record['end']} at step {record['steps']} "
                f"({record['wall_s'] / 60:.1f} min)"
            )

        fit_all([job for _, job, _ in todo], workers=self.jobs, done=finished)
        return records

    def train(self, key: str, seed: int, **kw: Any) -> dict[str, Any]:
        """Train one run (see :class:`Request`); its record."""
        req = Request(key, seed, **kw)
        return self.train_many([req])[(req.saved_as, seed)]

    def _record(self, req: Request, run_dir: Path, diverged: str | None, wall: float) -> dict[str, Any]:
        run = RUNS[req.key]
        cfg = load_config(run_dir / "config.yaml")
        rows = joined(read_log(run_dir / "log.csv"))
        curve = [
            {"step": int(r["step"]), "train_s": float(r["train_s"]), "mean_iu": float(r["mean_iu"])}
            for r in rows
            if r.get("mean_iu")
        ]
        losses = [float(r["loss"]) for r in rows if r.get("loss")]
        summary = _summary(run_dir)
        best_step = (summary.get("plateau") or {}).get("best_step") or (curve[-1]["step"] if curve else 0)
        at_best = next((c["train_s"] for c in curve if c["step"] == best_step), curve[-1]["train_s"] if curve else 0)
        return {
            "dir": str(run_dir),
            "label": run.label,
            "arch": run.arch,
            "seed": req.seed,
            "steps": _steps(summary, diverged, rows, cfg.train.max_iter),
            "cap": cfg.train.max_iter,
            "end": "diverged" if diverged else summary.get("end", "max_iter"),
            "best_step": best_step,
            "batch": cfg.data.batch_size,
            "lr": cfg.train.lr,
            "curve": curve,
            "diverged": diverged,
            "first_loss": losses[0] if losses else None,
            "last_loss": losses[-1] if losses else None,
            "train_s": curve[-1]["train_s"] if curve else wall,
            "train_s_to_best": at_best,
            # a resumed run's call is only its tail: its training seconds so far (the log's) when longer
            "wall_s": max(wall, curve[-1]["train_s"] if curve else 0.0),
        }


def _steps(summary: dict[str, Any], diverged: str | None, rows: list[dict[str, str]], cap: int) -> int:
    """The steps a run trained: its summary's; a diverged run (no summary) stopped at the step its error names
    (``… at step 31721``), else at its last logged step — not at the cap it never reached."""
    if summary.get("steps"):
        return int(summary["steps"])
    if diverged:
        named = re.search(r"(?:at|by) step (\d+)", diverged)
        logged = [int(r["step"]) for r in rows if r.get("step")]
        return int(named.group(1)) if named else max(logged, default=0)
    return cap


def joined(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """``log.csv`` rows with ``train_s`` counted across the pieces of a run trained in several processes. A piece
    resumed from its checkpoint at step S follows the rows its killed predecessor wrote past S: those go, and a
    count restarted at 0 (logs written before the trainer kept the count in its state) goes on from the seconds
    the run had at S."""
    out: list[dict[str, str]] = []
    offset, last = 0.0, -math.inf
    for row in rows:
        try:
            step, seconds = int(row["step"]), float(row["train_s"])
        except (KeyError, TypeError, ValueError):
            continue
        if seconds + offset < last:  # a resumed piece
            out = [r for r in out if int(r["step"]) < step]
            base = float(out[-1]["train_s"]) if out else 0.0
            offset = base if seconds < base else 0.0
        last = seconds + offset
        out.append({**row, "train_s": f"{last:.3f}"})
    return out


def _summary(run_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def held_out(run_dir: str | Path, ps: PaperScale, device: str, *, mask_cue: str = "none") -> dict[str, Any]:
    """The four metrics, boundary mean IU and per-class IU of a run's best checkpoint (the one its validation
    scenes picked) on the held-out scenes (split ``test``: never trained or selected on), optionally with a cue
    masked at test time. A run that diverged before its first evaluation is scored with its last weights."""
    ckpt = Path(run_dir) / "checkpoints" / "best.safetensors"
    ckpt = ckpt if ckpt.is_file() else ckpt.with_name("last.safetensors")
    if not ckpt.is_file():  # diverged before its first checkpoint: nothing to score
        return {k: math.nan for k in (*FOUR, "boundary_mean_iu")} | {"iu": []}
    model, _ = load_checkpoint(ckpt)
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
