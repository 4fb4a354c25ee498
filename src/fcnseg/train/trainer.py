"""``fit``: the reference's training loop, readable top to bottom.

:func:`prepare` builds one :class:`RunState` (model, optimizer, batches, scaler, start step, best score);
then, per step, :func:`train_step` sets the learning rate (a pure function of the step), runs
``iter_size`` forward/backward passes (gradients accumulate and are averaged, as Caffe's ``iter_size``),
stops on a non-finite loss and steps the optimizer; the loop logs, and on cadence evaluates and
checkpoints; rank 0 finally writes the run's outputs. Which images a step sees is a pure function of
``(seed, step)`` (``sampling.py``), so a resumed run and a DDP run see exactly the images an uninterrupted
single-process run sees. Mixed precision is ``amp.py``; what a run writes besides checkpoints, ``outputs.py``.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from ..config import RunConfig, dump_config
from ..data.transforms import pad_collate
from ..errors import ConfigError
from ..io import atomic_write, write_json
from ..models import FCN, freeze
from ..preprocessing import Preprocessing
from ..runtime.checkpoint import CheckpointInfo, model_kwargs, save_checkpoint
from ..runtime.evaluation import evaluate, write_grid
from ..runtime.hardware import inference_dtype, local_device, resolve_device, world_size
from ..runtime.heads import FOUR, head_classes, main_scores
from .amp import amp_dtype, calibrate_loss_scale, dtype_name, restored_scaler, run_dtype
from .build import build_datasets, build_model, init_backbone, init_from, make_optimizer, preprocessing
from .class_weights import class_weights
from .data_path import auto_workers, train_loader, uint8_collate
from .distributed import DistInfo, setup, wrap_ddp
from .early_stop import Plateau, selection_metric, write_summary
from .logging import RunLogger
from .memory import retained_heap
from .outputs import write_run_outputs
from .rank_guard import RankGuard
from .resume import batch_record, rescaled, restore
from .rng import restore_rng, rng_states, seed_run
from .run_folder import claim_run_folder
from .runlock import run_lock
from .sampling import Seeded, StepSampler
from .step import TrainingDiverged, train_step

log = logging.getLogger("fcnseg")

__all__ = [
    "RunState",
    "StepSampler",
    "TrainingDiverged",
    "amp_dtype",
    "calibrate_loss_scale",
    "fit",
    "normalize_on_device",
    "prepare",
    "resolve_device",
    "train_step",
    "write_grid",
]


@dataclass
class RunState:
    """Everything one training run holds between steps; :func:`prepare` builds it."""

    cfg: RunConfig
    run_dir: Path
    device: torch.device
    dist: DistInfo
    model: FCN
    ddp_model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    train_ds: Any
    val_ds: Any
    weight: torch.Tensor | None  # per-class loss weights
    dtype: torch.dtype | None  # autocast
    scaler: torch.amp.GradScaler | None  # fp16: measured on the first batch unless restored
    pre: Preprocessing  # the run's input preprocessing (computed once, here)
    on_device: bool  # images leave the workers as uint8 and are normalised on the device
    workers: int
    batches: Iterator[Any]
    info: CheckpointInfo
    logger: RunLogger
    start: int = 0
    best: float = -1.0  # the best validation score so far by selection_metric (what best.safetensors holds)
    plateau: Plateau = field(default_factory=lambda: Plateau(None))  # train.early_stop's count
    seen: int = field(default=0)  # images trained on in this process
    train_s: float = field(default=0.0)  # seconds in training steps so far, resumes included (evaluation excluded)

    @property
    def heads(self) -> dict[str, int]:
        return dict(self.model.heads)


def fit(
    cfg: RunConfig, run_dir: str | Path, *, resume: bool = False, progress: bool = True, overwrite: bool = False
) -> dict[str, Any]:
    """Train ``cfg`` into ``run_dir``; returns the final validation metrics, ``{head: scores}`` (see ``heads.py``).

    ``run_dir`` receives ``config.yaml``, ``log.csv``, ``tb/``, ``checkpoints/{last,best}.safetensors``
    (+ ``.state-STEP.pt``), ``metrics.json``, ``curves.png`` and ``grid.png``. With ``resume`` it continues
    from ``checkpoints/last`` exactly where it stopped. Under torchrun each local rank trains on
    ``cuda:LOCAL_RANK`` (or the CPU with gloo); an error on one rank stops every rank with its message.

    A fresh run into a folder that holds a run already, or files fcnseg did not write, is refused unless
    ``overwrite`` (which first removes the earlier run's outputs); see :mod:`fcnseg.train.run_folder`.
    """
    device = local_device(cfg.train.device, world_size())
    # CPU: keep freed activations and gradients in the process (engine/memory.py; ~1.3x per VGG16 step)
    main_rank = os.environ.get("RANK", "0") == "0"
    with run_lock(Path(run_dir), enabled=main_rank), retained_heap(cfg.train.retain_memory and device.type == "cpu"):
        dist = setup(device, cfg.train.dist_timeout_s)
        with RankGuard(dist.rank, dist.world):  # a refusal on rank 0 stops every rank with its message
            if main_rank:
                claim_run_folder(cfg, Path(run_dir), resume=resume, overwrite=overwrite)
            run = prepare(cfg, Path(run_dir), device, dist, resume=resume)
            metrics = _loop(run, progress)
            _finish(run, metrics)
            return metrics


def normalize_on_device(cfg: RunConfig, device: torch.device) -> bool:
    """``data.normalize_on_device`` resolved: by default on CUDA for plain RGB inputs (not NYUD's modalities)."""
    plain = cfg.data.preprocessing != "nyud" and cfg.model.in_channels == 3 and not cfg.model.streams
    if cfg.data.normalize_on_device is None:
        return plain and device.type == "cuda"
    if cfg.data.normalize_on_device and not plain:
        raise ConfigError("data.normalize_on_device: only for RGB inputs (not NYUD, extra channels or streams)")
    return cfg.data.normalize_on_device


def prepare(cfg: RunConfig, run_dir: Path, device: torch.device, dist: DistInfo, *, resume: bool) -> RunState:
    """Datasets, model (+ DDP), optimizer, restored state and the batches, in the order that keeps the
    random stream of a resumed run equal to the uninterrupted one's."""
    seed_run(cfg.train.seed, dist.rank, device)
    on_device = normalize_on_device(cfg, device)
    pre = preprocessing(cfg)
    train_ds, val_ds = build_datasets(cfg, pre, normalize=not on_device)
    model = build_model(cfg, train_ds).to(device)
    if not resume:
        _begin(cfg, run_dir, model, dist)
    freeze(model, cfg.model.freeze)  # before the optimizer: frozen parameters get no group
    if cfg.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    ddp_model = wrap_ddp(model, device, sync_bn=cfg.train.sync_bn) if dist.world > 1 else model
    optimizer = make_optimizer(model, cfg.train)
    weight = _class_weight(cfg, train_ds, model, device, run_dir if dist.main and not resume else None)
    start, best, state = _resumed(cfg, run_dir, model, optimizer) if resume else (0, -1.0, {})
    best = float(state.get("best_score", best))
    plateau = Plateau(cfg.train.early_stop)
    plateau.restore(state.get("early_stop"), run_dir / "checkpoints" / "last")
    dtype = run_dtype(cfg, device, dist, state)  # a resume keeps the recorded one
    cfg = rescaled(cfg, state, dist.world, dist.main, run_dir / "checkpoints" / "last.safetensors") if resume else cfg
    workers = auto_workers(device, _local_world(dist)) if cfg.data.workers == "auto" else int(cfg.data.workers)
    tc = cfg.train
    sampler = StepSampler(
        len(train_ds), cfg.data.batch_size, tc.seed, start * tc.iter_size, tc.max_iter * tc.iter_size, dist
    )
    loader = train_loader(
        Seeded(train_ds), sampler, device, workers=workers, collate_fn=uint8_collate if on_device else pad_collate
    )
    batches = iter(loader)  # created before the RNG state is restored: its seed draw is not part of the run
    if resume:
        restore_rng(state, device, dist.rank, run_dir / "checkpoints" / "last")
    logger = RunLogger(run_dir, enabled=dist.main)
    if resume:
        logger.truncate_after(start)
    info = CheckpointInfo(
        arch=model.arch,
        model_kwargs=model_kwargs(model),
        classes=list(train_ds.classes),
        preprocessing=pre.to_dict(),
        config=cfg.to_dict(),
        train_dtype=dtype_name(dtype),
        best_mean_iu=state.get("best_mean_iu"),
    )
    return RunState(
        cfg,
        run_dir,
        device,
        dist,
        model,
        ddp_model,
        optimizer,
        train_ds,
        val_ds,
        weight,
        dtype,
        restored_scaler(state, dtype, device),
        pre,
        on_device,
        workers,
        batches,
        info,
        logger,
        start,
        best,
        plateau,
        train_s=_seconds(state.get("train_s")),
    )


def _seconds(value: object) -> float:
    """The training seconds a resumed state recorded (0 for a state from before they were kept, or a bad one)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
    return float(value) if ok else 0.0  # type: ignore[arg-type]


def _begin(cfg: RunConfig, run_dir: Path, model: FCN, dist: DistInfo) -> None:
    """A new run: the resolved config in the folder (rank 0), the trunk's and ``init_from``'s weights in the model."""
    if dist.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        with atomic_write(run_dir / "config.yaml", "w") as f:
            f.write(dump_config(cfg))
    init_backbone(model, cfg)
    if cfg.model.init_from:
        init_from(model, cfg.model.init_from, cfg.data.preprocessing)


def _class_weight(cfg: RunConfig, ds: Any, model: FCN, device: torch.device, record: Path | None) -> Any:
    """``train.class_weights`` as a tensor on ``device`` (None: unweighted), recorded in ``record`` when given."""
    weights = None if model.multi_head else class_weights(cfg.train.class_weights, ds, model.num_classes)
    if weights is None:
        return None
    if record is not None:
        write_json(record / "class_weights.json", dict(zip(ds.classes, weights.round(6).tolist(), strict=False)))
    return torch.tensor(weights, dtype=torch.float32, device=device)


def _resumed(cfg: RunConfig, run_dir: Path, model: FCN, optimizer: Any) -> tuple[int, float, dict[str, Any]]:
    ckpt_dir = run_dir / "checkpoints"
    for stale in ckpt_dir.glob(".*.tmp"):  # temp files of a write that a kill interrupted
        stale.unlink(missing_ok=True)
    return restore(model, optimizer, ckpt_dir / "last")


def _local_world(dist: DistInfo) -> int:
    return int(os.environ.get("LOCAL_WORLD_SIZE", str(dist.world)))


#: the progress bar's name for the run's compute dtype (``train fp32``, ``train bf16``)
_SHORT = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}


def _loop(run: RunState, progress: bool) -> dict[str, Any]:
    tc, dist = run.cfg.train, run.dist
    bar = tqdm(  # a terminal's progress bar only: a log file gets the lines below, not carriage returns
        total=tc.max_iter,
        initial=run.start,
        disable=not (progress and dist.main and sys.stderr.isatty()),
        desc=f"train {_SHORT[dtype_name(run.dtype)]}",
        dynamic_ncols=True,
    )
    run.ddp_model.train()
    t0, metrics = time.perf_counter(), {}
    if dist.main:
        log.info(_start_line(run))
    if run.plateau.stopped_at is not None:  # a resumed run that had already stopped early: nothing to train
        metrics = _evaluate(run)
    for step in range(run.start if run.plateau.stopped_at is None else tc.max_iter, tc.max_iter):
        done = step + 1
        logged = done % tc.log_every == 0 or done == tc.max_iter
        t_step = time.perf_counter()
        loss, lr = train_step(run, step, read_loss=run.device.type == "cpu" or logged)
        run.train_s += time.perf_counter() - t_step
        bar.update(1)
        if logged:
            rate = run.seen / (time.perf_counter() - t0)
            bar.set_postfix(loss=f"{loss:.4g}", img_s=f"{rate:.1f}")
            run.logger.log(done, loss=loss, lr=lr, images_per_s=rate, train_s=round(run.train_s, 3))
        evaluated = _on_cadence(run, done)
        if evaluated:
            metrics = evaluated
            if dist.main:
                rate = run.seen / max(time.perf_counter() - t0, 1e-9)
                log.info(
                    f"step {done}/{tc.max_iter}: loss {loss:.4g}, validation mean IU "
                    f"{main_scores(metrics)['mean_iu']:.4f}, {rate:.1f} images/s"
                )
        if run.plateau.stopped_at is not None:
            break
    bar.close()
    run.logger.close()
    return metrics


def _start_line(run: RunState) -> str:
    """What a run is about to do, in one line (logs that are not a terminal get this instead of a bar)."""
    tc, d = run.cfg.train, run.cfg.data
    start = f"resuming at step {run.start}" if run.start else "training"
    return (
        f"{start}: {run.model.arch} on {d.name} ({len(run.train_ds)} images), {tc.max_iter} steps of batch "
        f"{d.batch_size * run.dist.world * tc.iter_size}, {dtype_name(run.dtype)} on {run.device} → {run.run_dir}"
    )


def _on_cadence(run: RunState, done: int) -> dict[str, Any] | None:
    """After step ``done``: evaluate (and keep the best) and checkpoint when their cadence or the last step says so."""
    tc, dist, ckpt_dir = run.cfg.train, run.dist, run.run_dir / "checkpoints"
    last = done == tc.max_iter
    metrics = None
    if done % tc.eval_every == 0 or last:
        metrics = _evaluate(run)
        main = main_scores(metrics)
        run.logger.log(done, **{k: main[k] for k in FOUR}, train_s=round(run.train_s, 3))
        score = main[selection_metric(run.cfg)]
        if score > run.best:
            run.best, run.info.best_mean_iu = score, main["mean_iu"]
            if dist.main:
                _save(run, done, ckpt_dir / "best")
        last = run.plateau.update(score, done) or last  # every rank counts alike (the metrics are all-reduced)
    if done % tc.checkpoint_every == 0 or last:
        extra = {
            **rng_states(run.device, dist.world),
            **batch_record(run.cfg, dist.world),  # every rank takes part
            "amp_dtype": dtype_name(run.dtype),
            "early_stop": run.plateau.state(),
            "best_score": run.best,
            "train_s": run.train_s,
        }
        if dist.main:
            _save(run, done, ckpt_dir / "last", training_state=extra)
    return metrics


def _evaluate(run: RunState) -> dict[str, Any]:
    e = run.cfg.eval
    dtype = (inference_dtype(run.device) or torch.bfloat16) if e.amp else None
    return evaluate(
        run.model,
        run.val_ds,
        run.heads,
        device=run.device,
        rank=run.dist.rank,
        world=run.dist.world,
        max_images=e.max_images,
        batch_size=e.batch_size,
        workers=run.workers,
        dtype=dtype,
        normalize=run.pre if run.on_device else None,
    )


def _finish(run: RunState, metrics: dict[str, Any]) -> None:
    """metrics.json, curves, confusion pictures and the grid (rank 0); each head's class names go into the
    returned metrics (``classes``), so that callers need not read them back from the checkpoint."""
    if run.dist.main:
        write_summary(
            run.run_dir,
            run.plateau,
            steps=run.plateau.stopped_at or run.cfg.train.max_iter,
            max_iter=run.cfg.train.max_iter,
            metric=selection_metric(run.cfg),
            best=run.best,
        )
        best = f"best {selection_metric(run.cfg)} {run.best:.4f}" if run.best >= 0 else "not evaluated"
        log.info("finished: %s; %s", run.plateau.reason(run.cfg.train.max_iter), best)
    names = head_classes(metrics, run.train_ds, run.info.classes)
    if run.dist.main and metrics:
        write_run_outputs(
            run.run_dir,
            metrics,
            names,
            model=run.model,
            val_ds=run.val_ds,
            pre=run.pre,
            grid_images=run.cfg.eval.grid_images,
            device=run.device,
            loss=(run.cfg.train.loss, run.cfg.train.normalize),
        )
    for head, scores in metrics.items():
        scores["classes"] = list(names.get(head, []))


def _save(run: RunState, step: int, path: Path, training_state: dict[str, Any] | None = None) -> None:
    """Checkpoint ``path`` at ``step`` (with the optimizer, scaler and ``training_state`` when one is given)."""
    bad = [n for n, p in run.model.named_parameters() if not torch.isfinite(p).all()]
    if bad:  # never overwrite a good checkpoint with a diverged one
        raise TrainingDiverged(
            f"weights became non-finite by step {step} ({', '.join(bad[:3])}…): the learning rate is too high "
            f"for this loss normalisation; the last good checkpoint is {path.with_suffix('.safetensors')}"
        )
    run.info.step = step
    if training_state is None:
        save_checkpoint(path, run.model, run.info)
    else:
        save_checkpoint(path, run.model, run.info, optimizer=run.optimizer, scaler=run.scaler, extra=training_state)
