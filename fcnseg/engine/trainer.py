"""``fit``: the reference's training loop, readable top to bottom.

Per step: set the learning rate (a pure function of the step), run ``iter_size`` forward/backward
passes (gradients accumulate and are averaged, as Caffe's ``iter_size``), stop on a non-finite loss,
step SGD, log, and on cadence evaluate and checkpoint. Which images a step sees is a pure function of
``(seed, step)`` (random sampling with replacement, as the reference), so a resumed run and a DDP run
see exactly the images an uninterrupted single-process run sees.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler
from tqdm import tqdm

from ..config import RunConfig, dump_config
from ..data.transforms import pad_collate
from ..errors import CheckpointError, ConfigError, FCNError
from ..io import atomic_write
from ..losses import dice_loss2d, pixel_loss
from ..metrics import named
from ..models import FCN, freeze
from ..preprocessing import Preprocessing
from .build import build_datasets, build_model, init_backbone, init_from, make_optimizer, preprocessing
from .checkpoint import (
    CheckpointInfo,
    load_into,
    load_state_dict_file,
    load_training_state,
    model_kwargs,
    read_info,
    save_checkpoint,
)
from .class_weights import class_weights
from .data_path import auto_workers, to_device, train_loader, uint8_collate
from .device import local_device, resolve_device, restore_rng, rng_states, seed_run
from .distributed import DistInfo, setup, world_size, wrap_ddp
from .evaluator import evaluate
from .logging import RunLogger, plot_curves
from .memory import retained_heap
from .rank_guard import RankGuard
from .resume import batch_record, keep_global_batch
from .runlock import run_lock
from .schedule import lr_at

__all__ = [
    "StepSampler",
    "TrainingDiverged",
    "amp_dtype",
    "calibrate_loss_scale",
    "fit",
    "normalize_on_device",
    "resolve_device",
    "write_grid",
]


class TrainingDiverged(FCNError, RuntimeError):
    """The loss became NaN or infinite."""


class StepSampler(Sampler[list[tuple[int, int]]]):
    """Yields, for micro-step ``m``, this rank's share of ``batch × world`` (index, seed) pairs.

    Indices are drawn with replacement from a generator seeded by ``(seed, m)``; rank ``r`` takes
    positions ``r, r + world, …``, so one process with batch ``batch × world`` sees the same images.
    """

    def __init__(self, n: int, batch: int, seed: int, start: int, stop: int, dist: DistInfo) -> None:
        self.n, self.batch, self.seed, self.start, self.stop, self.dist = n, batch, seed, start, stop, dist

    def indices(self, m: int) -> list[tuple[int, int]]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + m)
        idx = torch.randint(self.n, (self.batch * self.dist.world,), generator=g).tolist()
        seeds = torch.randint(2**31 - 1, (len(idx),), generator=g).tolist()
        pairs = list(zip(idx, seeds, strict=True))
        return pairs[self.dist.rank :: self.dist.world]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for m in range(self.start, self.stop):
            yield self.indices(m)

    def __len__(self) -> int:
        return self.stop - self.start


class _Seeded(Dataset):
    """Loads sample ``index`` with the global RNG seeded per sample, so augmentation is reproducible
    whatever the number of workers, without disturbing the training process's RNG."""

    def __init__(self, ds: Dataset) -> None:
        self.ds = ds

    def __len__(self) -> int:
        return len(self.ds)  # type: ignore[arg-type]

    def __getitem__(self, item: tuple[int, int]) -> Any:
        index, seed = item
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.ds[index]


def _loss(out: Any, y: Any, cfg: RunConfig, dist: DistInfo, weight: torch.Tensor | None) -> torch.Tensor:
    """``train.loss`` (fp32), scaled so that DDP's gradient averaging gives the global loss.

    The pixel term (cross-entropy or focal) is summed, then, when normalised, divided by the labelled
    pixels (class-weighted when weights are given) of the *global* batch; the Dice term is per image.
    """
    tc = cfg.train
    loss = pixel_loss(tc.loss, out, y, normalize=False, weight=weight, gamma=tc.focal_gamma)
    if tc.normalize:
        masks = y.values() if isinstance(y, dict) else [y]
        if weight is not None:  # a weighted average, as F.cross_entropy(weight=…) takes it
            labelled = sum(weight[torch.where(m != 255, m, 0)].mul(m != 255).sum() for m in masks)
        else:
            labelled = sum((m != 255).sum() for m in masks)
        labelled = labelled.to(loss.dtype)  # on the device: no host sync
        if dist.world > 1:
            torch.distributed.all_reduce(labelled)
        loss = loss / labelled.clamp(min=1e-12)
    loss = loss * dist.world
    if "dice" in tc.loss:
        heads = out.items() if isinstance(out, dict) else [("", out)]
        loss = loss + tc.dice_weight * sum(dice_loss2d(o, y[h] if isinstance(y, dict) else y) for h, o in heads)
    return loss


def amp_dtype(cfg: RunConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``train.amp`` (None when off): bf16 on CPU, fp16 on CUDA unless set."""
    if not cfg.train.amp:
        return None
    if cfg.train.amp_dtype != "auto":
        return getattr(torch, cfg.train.amp_dtype)
    return torch.float16 if device.type == "cuda" else torch.bfloat16


def calibrate_loss_scale(model: torch.nn.Module, loss_fn: Any, headroom: float = 2.0**-3) -> float:
    """An fp16 loss scale measured on one batch: the largest power of two that keeps gradients in range.

    ``loss_fn()`` runs one forward and returns the fp32 loss; its backward here is fp32. The summed
    reference loss makes weight gradients of 1e4–1e6 (why its learning rate is 1e-10), past fp16's
    65504, while the normalised loss makes them tiny, near fp16's underflow (6e-8). The scale puts
    the largest gradient at ``headroom × 65504`` (default 1/8, room for later batches; ``GradScaler`` then
    adjusts it dynamically), so the fp16 gradients of both recipes neither overflow nor underflow. The
    loss and the SGD update stay fp32, so a 1e-14 learning rate and momentum 0.99 lose nothing.
    """
    with torch.random.fork_rng(devices=[]):  # dropout draws here must not shift the run's random stream
        loss_fn().backward()
    peak = max((float(p.grad.abs().max()) for p in model.parameters() if p.grad is not None), default=0.0)
    model.zero_grad(set_to_none=True)
    if not math.isfinite(peak) or peak == 0.0:
        return 2.0**16  # GradScaler's own default
    return float(2.0 ** min(24, math.floor(math.log2(headroom * 65504.0 / peak))))


def fit(cfg: RunConfig, run_dir: str | Path, *, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Train ``cfg`` into ``run_dir``; returns the final validation metrics.

    ``run_dir`` receives ``config.yaml``, ``log.csv``, ``tb/``, ``checkpoints/{last,best}.safetensors``
    (+ ``.state-STEP.pt``), ``metrics.json``, ``curves.png`` and ``grid.png``. With ``resume`` it continues
    from ``checkpoints/last`` exactly where it stopped. Under torchrun each local rank trains on
    ``cuda:LOCAL_RANK`` (or the CPU with gloo); an error on one rank stops every rank with its message.
    """
    device = local_device(cfg.train.device, world_size())
    # CPU: keep freed activations and gradients in the process (engine/memory.py; ~1.3x per VGG16 step)
    main_rank = os.environ.get("RANK", "0") == "0"
    with run_lock(Path(run_dir), enabled=main_rank), retained_heap(cfg.train.retain_memory and device.type == "cpu"):
        dist = setup(device, cfg.train.dist_timeout_s)
        with RankGuard(dist.rank, dist.world):
            run = _start(cfg, Path(run_dir), device, dist, resume=resume)
            metrics = _loop(run, progress)
            _finish(run, metrics)
            return metrics


@dataclass
class _Run:
    """Everything one training run holds between steps."""

    cfg: RunConfig
    run_dir: Path
    device: torch.device
    dist: DistInfo
    model: FCN
    ddp_model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    train_ds: Any
    val_ds: Any
    weight: torch.Tensor | None
    dtype: torch.dtype | None
    scaler: torch.amp.GradScaler | None
    pre: Preprocessing | None  # set when images are normalised on the device
    workers: int
    batches: Iterator[Any]
    info: CheckpointInfo
    logger: RunLogger
    start: int
    best: float

    @property
    def heads(self) -> Any:
        return self.model.heads if self.model.multi_head else self.model.num_classes


def normalize_on_device(cfg: RunConfig, device: torch.device) -> bool:
    """``data.normalize_on_device`` resolved: by default on CUDA for plain RGB inputs (not NYUD's modalities)."""
    plain = cfg.data.preprocessing != "nyud" and cfg.model.in_channels == 3 and not cfg.model.streams
    if cfg.data.normalize_on_device is None:
        return plain and device.type == "cuda"
    if cfg.data.normalize_on_device and not plain:
        raise ConfigError("data.normalize_on_device: only for RGB inputs (not NYUD, extra channels or streams)")
    return cfg.data.normalize_on_device


def _start(cfg: RunConfig, run_dir: Path, device: torch.device, dist: DistInfo, *, resume: bool) -> _Run:
    """Datasets, model (+ DDP), optimizer, restored state and the data loader, in the order that keeps
    the random stream of a resumed run equal to the uninterrupted one's."""
    tc = cfg.train
    seed_run(tc.seed, dist.rank, device)
    on_device = normalize_on_device(cfg, device)
    train_ds, val_ds = build_datasets(cfg, normalize=not on_device)
    model = build_model(cfg, train_ds).to(device)
    ckpt_dir = run_dir / "checkpoints"
    if not resume:
        if dist.main:
            run_dir.mkdir(parents=True, exist_ok=True)
            with atomic_write(run_dir / "config.yaml", "w") as f:
                f.write(dump_config(cfg))
        init_backbone(model, cfg)
        if cfg.model.init_from:
            init_from(model, cfg.model.init_from)
    freeze(model, cfg.model.freeze)  # before the optimizer: frozen parameters get no group
    if tc.channels_last:
        model = model.to(memory_format=torch.channels_last)
    ddp_model = wrap_ddp(model, device, sync_bn=tc.sync_bn) if dist.world > 1 else model
    optimizer = make_optimizer(model, tc)
    weights = None if model.multi_head else class_weights(tc.class_weights, train_ds, model.num_classes)
    weight = None if weights is None else torch.tensor(weights, dtype=torch.float32, device=device)
    if weights is not None and dist.main and not resume:
        with atomic_write(run_dir / "class_weights.json", "w") as f:
            json.dump(dict(zip(train_ds.classes, weights.round(6).tolist(), strict=False)), f, indent=2)
    dtype = amp_dtype(cfg, device)
    start, best, state, scaler = 0, -1.0, {}, None
    if resume:
        for stale in ckpt_dir.glob(".*.tmp"):  # temp files of a write that a kill interrupted
            stale.unlink(missing_ok=True)
        start, best, state = _restore(model, optimizer, ckpt_dir / "last", run_dir)
        cfg = _rescaled(cfg, state, dist, ckpt_dir / "last.safetensors")
        if dtype is torch.float16 and state.get("scaler"):
            scaler = torch.amp.GradScaler(device.type)
            scaler.load_state_dict(state["scaler"])
    workers = auto_workers(device, _local_world(dist)) if cfg.data.workers == "auto" else int(cfg.data.workers)
    sampler = StepSampler(len(train_ds), cfg.data.batch_size, tc.seed, start * tc.iter_size,
                          tc.max_iter * tc.iter_size, dist)  # fmt: skip
    collate = uint8_collate if on_device else pad_collate
    loader = train_loader(_Seeded(train_ds), sampler, device, workers=workers, collate_fn=collate)
    batches = iter(loader)  # created before the RNG state is restored: its seed draw is not part of the run
    if resume:
        restore_rng(state, device, dist.rank, ckpt_dir / "last")
    logger = RunLogger(run_dir, enabled=dist.main)
    if resume:
        logger.truncate_after(start)
    info = CheckpointInfo(arch=model.arch, model_kwargs=model_kwargs(model, cfg.model.width),
                          classes=list(train_ds.classes), preprocessing=preprocessing(cfg).to_dict(),
                          config=cfg.to_dict())  # fmt: skip
    return _Run(cfg, run_dir, device, dist, model, ddp_model, optimizer, train_ds, val_ds, weight, dtype, scaler,
                preprocessing(cfg) if on_device else None, workers, batches, info, logger, start, best)  # fmt: skip


def _local_world(dist: DistInfo) -> int:
    return int(os.environ.get("LOCAL_WORLD_SIZE", str(dist.world)))


def _rescaled(cfg: RunConfig, state: dict[str, Any], dist: DistInfo, where: Path) -> RunConfig:
    """``cfg`` with the per-process batch that keeps the recorded global batch (a note says so on rank 0)."""
    new = keep_global_batch(cfg, state, dist.world, where)
    if new.data.batch_size != cfg.data.batch_size and dist.main:
        print(f"note: resuming on {dist.world} process(es) (trained on {state['world']}): data.batch_size "
              f"{cfg.data.batch_size} → {new.data.batch_size} keeps the global batch of {state['global_batch']}",
              file=sys.stderr)  # fmt: skip
    return new


def _next_batch(run: _Run) -> tuple[torch.Tensor, Any]:
    item = next(run.batches)
    if run.pre is not None:  # uint8 from the workers: normalised on the device
        x, y, sizes = item
        return to_device(x, y, run.device, run.pre, sizes)
    return to_device(*item, run.device)


def _accumulate(run: _Run) -> tuple[Any, int]:
    """``train.iter_size`` forward/backward passes (DDP all-reduces gradients on the last one only);
    the global loss (on the device) and the number of images the step saw."""
    cfg, tc, dist = run.cfg, run.cfg.train, run.dist
    total: Any = 0.0
    images = 0
    for i in range(tc.iter_size):
        x, y = _next_batch(run)
        if tc.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if run.dtype is torch.float16 and run.scaler is None:  # measured on the first batch
            run.scaler = _measured_scaler(run, x, y)
        accumulating = dist.world > 1 and i < tc.iter_size - 1
        with run.ddp_model.no_sync() if accumulating else contextlib.nullcontext():  # type: ignore[operator]
            with torch.autocast(run.device.type, dtype=run.dtype or torch.float32, enabled=run.dtype is not None):
                out = run.ddp_model(x)
            loss = _loss(out, y, cfg, dist, run.weight) / tc.iter_size  # fp32: the losses cast the scores up
            (run.scaler.scale(loss) if run.scaler is not None else loss).backward()
        total += loss.detach() / dist.world  # this rank's share of the global loss, kept on the device
        images += x.shape[0] * dist.world
    if dist.world > 1:
        total = total.double()
        torch.distributed.all_reduce(total)
    return total, images


def _measured_scaler(run: _Run, x: torch.Tensor, y: Any) -> torch.amp.GradScaler:
    tc, model = run.cfg.train, run.model
    scale = tc.loss_scale or calibrate_loss_scale(model, lambda: _loss(model(x), y, run.cfg, DistInfo(), run.weight))
    if run.dist.world > 1:  # every rank must scale alike, or the gradient average is wrong
        shared = torch.tensor([scale], device=run.device)
        torch.distributed.all_reduce(shared, op=torch.distributed.ReduceOp.MIN)
        scale = float(shared.item())
    return torch.amp.GradScaler(run.device.type, init_scale=scale)


def _checked(total: Any, step: int, run: _Run) -> float:
    tc = run.cfg.train
    total = float(total)
    if not math.isfinite(total):
        advice = "too high for the summed loss (the reference uses 1e-10…1e-14)" if not tc.normalize else "too high"
        raise TrainingDiverged(
            f"loss became {total} at step {step}: with train.normalize={tc.normalize}, learning rate {tc.lr:g} is "
            f"{advice}; the last good checkpoint is {run.run_dir / 'checkpoints' / 'last.safetensors'}"
        )
    return total


def _loop(run: _Run, progress: bool) -> dict[str, Any]:
    cfg, tc, dist, optimizer = run.cfg, run.cfg.train, run.dist, run.optimizer
    ckpt_dir = run.run_dir / "checkpoints"
    bar = tqdm(total=tc.max_iter, initial=run.start, disable=not (progress and dist.main), desc="train",
               dynamic_ncols=True)  # fmt: skip
    run.ddp_model.train()
    t0, seen, metrics = time.perf_counter(), 0, {}
    for step in range(run.start, tc.max_iter):
        lr = lr_at(step, tc)
        for group in optimizer.param_groups:
            group["lr"] = lr * group["lr_mult"]
        total, images = _accumulate(run)
        seen += images
        done = step + 1
        logged = done % tc.log_every == 0 or done == tc.max_iter
        # Reading the loss on the host waits for the device: on CUDA only when it is logged (a NaN in
        # between is caught there, and checkpoints refuse non-finite weights); on the CPU it is free.
        if run.device.type == "cpu" or logged:
            total = _checked(total, step, run)
        if run.scaler is not None:  # skips the step (and lowers the scale) if a gradient overflowed
            run.scaler.step(optimizer)
            run.scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        bar.update(1)
        if logged:
            rate = seen / (time.perf_counter() - t0)
            bar.set_postfix(loss=f"{total:.4g}", img_s=f"{rate:.1f}")
            run.logger.log(done, loss=total, lr=lr, images_per_s=rate)
        last = done == tc.max_iter
        if done % tc.eval_every == 0 or last:
            metrics = _evaluate(run)
            main = metrics if "mean_iu" in metrics else next(iter(metrics.values()))
            run.logger.log(done, **{k: main[k] for k in ("pixel_accuracy", "mean_accuracy", "mean_iu", "fw_iu")})
            if dist.main and main["mean_iu"] > run.best:
                run.best = main["mean_iu"]
                _save(run.model, run.info, done, run.best, ckpt_dir / "best")
        if done % tc.checkpoint_every == 0 or last:
            extra = {**rng_states(run.device, dist.world), **batch_record(cfg, dist.world)}  # every rank takes part
            if dist.main:
                _save(run.model, run.info, done, run.best, ckpt_dir / "last", optimizer, run.scaler, extra)
    bar.close()
    run.logger.close()
    return metrics


def _evaluate(run: _Run) -> dict[str, Any]:
    from .device import inference_dtype

    e = run.cfg.eval
    dtype = (inference_dtype(run.device) or torch.bfloat16) if e.amp else None
    return evaluate(run.model, run.val_ds, run.heads, device=run.device, rank=run.dist.rank, world=run.dist.world,
                    max_images=e.max_images, batch_size=e.batch_size, workers=run.workers, dtype=dtype,
                    normalize=run.pre)  # fmt: skip


def _finish(run: _Run, metrics: dict[str, Any]) -> None:
    """metrics.json, curves, confusion matrices and the grid (rank 0)."""
    if not (run.dist.main and metrics):
        return
    cfg, train_ds, run_dir = run.cfg, run.train_ds, run.run_dir
    with atomic_write(run_dir / "metrics.json", "w") as f:
        json.dump(_public(_named(metrics, train_ds)), f, indent=2)
    plot_curves(run_dir)
    from ..viz import save_confusion

    for head, m in metrics.items() if "confusion" not in metrics else [("", metrics)]:
        names = list(train_ds.classes) if head in ("", "sem") else list(getattr(train_ds, "geometric_classes", []))
        save_confusion(run_dir / f"confusion{'_' + head if head else ''}.png", np.array(m["confusion"]), names)
    write_grid(run.model, run.val_ds, run_dir / "grid.png", preprocessing(cfg), list(train_ds.classes),
               cfg.eval.grid_images, run.device)  # fmt: skip


def write_grid(model: FCN, ds: Dataset, path: Path, pre: Any, classes: list[str], n: int, device: torch.device) -> None:
    """``grid.png``: image | truth | prediction for the first ``n`` validation images."""
    from ..viz import save_grid
    from .evaluator import predict_batch

    rows = []
    for i in range(min(n, len(ds))):  # type: ignore[arg-type]
        x, y = ds[i]
        x = torch.as_tensor(x).as_subclass(torch.Tensor)
        x = pre(x) if x.dtype == torch.uint8 else x  # a set normalised on the device holds raw images
        pred = predict_batch(model.eval(), x.unsqueeze(0).to(device).float())
        if isinstance(pred, dict):
            pred, y = pred[next(iter(pred))], y[next(iter(y))]
        image = pre.invert(torch.as_tensor(x)[:3].float()).permute(1, 2, 0).numpy()
        rows.append([image, torch.as_tensor(y).numpy(), pred[0].cpu().numpy()])
    if rows:
        save_grid(path, rows, titles=["image", "truth", "prediction"], classes=classes)


def _named(metrics: dict[str, Any], ds: Any) -> dict[str, Any]:
    """Class names next to the per-class numbers (each head with its own class list)."""
    if "iu" in metrics:
        return named(metrics, list(ds.classes))
    return {h: named(m, list(ds.classes) if h == "sem" else list(getattr(ds, "geometric_classes", [])))
            for h, m in metrics.items()}  # fmt: skip


def _public(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: (_public(v) if isinstance(v, dict) else v) for k, v in metrics.items() if k != "confusion"}


def _save(
    model: FCN,
    info: CheckpointInfo,
    step: int,
    best: float,
    path: Path,
    optimizer: Any = None,
    scaler: Any = None,
    extra: dict[str, Any] | None = None,
) -> None:
    bad = [n for n, p in model.named_parameters() if not torch.isfinite(p).all()]
    if bad:  # never overwrite a good checkpoint with a diverged one
        raise TrainingDiverged(
            f"weights became non-finite by step {step} ({', '.join(bad[:3])}…): the learning rate is too high "
            f"for this loss normalisation; the last good checkpoint is {path.with_suffix('.safetensors')}"
        )
    info.step, info.best_mean_iu = step, best
    save_checkpoint(path, model, info, optimizer=optimizer, scaler=scaler, extra=extra)


def _restore(
    model: FCN, optimizer: torch.optim.Optimizer, path: Path, run_dir: Path
) -> tuple[int, float, dict[str, Any]]:
    """Load weights and optimizer from ``path``; the step, the best mean IU and the whole training state."""
    weights = path.with_suffix(".safetensors")
    if not weights.is_file():
        raise CheckpointError(f"{weights}: no checkpoint to resume from in {run_dir} (--resume auto starts one)")
    info = read_info(weights)
    state = _checked_state(load_training_state(path, info.step), weights)  # the state written with these weights
    if state["step"] != info.step:
        raise CheckpointError(
            f"{weights}: weights are from step {info.step} but the training state from step {state['step']}"
        )
    load_into(model, load_state_dict_file(weights), weights)
    try:
        optimizer.load_state_dict(state["optimizer"])
    except (ValueError, KeyError, TypeError, RuntimeError) as e:
        raise CheckpointError(f"{weights}: training state does not fit this optimizer ({e})") from None
    return info.step, float(state.get("best_mean_iu") or -1.0), state


def _checked_state(state: Any, weights: Path) -> dict[str, Any]:
    """The training state's fields, with their types checked (it is a file a user can hand us)."""
    checks = {
        "step": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
        "optimizer": lambda v: isinstance(v, dict) and {"state", "param_groups"} <= set(v),
        "rng": lambda v: isinstance(v, torch.Tensor) and v.dtype == torch.uint8,
    }
    if not isinstance(state, dict):
        raise CheckpointError(f"{weights}: malformed training state (a {type(state).__name__}, not a mapping)")
    for key, ok in checks.items():
        if key not in state or not ok(state[key]):
            raise CheckpointError(f"{weights}: malformed training state: field {key!r} missing or of the wrong type")
    best = state.get("best_mean_iu")
    if best is not None and not (isinstance(best, (int, float)) and math.isfinite(best)):
        raise CheckpointError(f"{weights}: malformed training state: best_mean_iu {best!r}")
    if state.get("scaler") is not None and not isinstance(state["scaler"], dict):
        raise CheckpointError(f"{weights}: malformed training state: scaler is not a mapping")
    return state
