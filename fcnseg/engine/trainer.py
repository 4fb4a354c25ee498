"""``fit``: the reference's training loop, readable top to bottom.

Per step: set the learning rate (a pure function of the step), run ``iter_size`` forward/backward
passes (gradients accumulate and are averaged, as Caffe's ``iter_size``), stop on a non-finite loss,
step SGD, log, and on cadence evaluate and checkpoint. Which images a step sees is a pure function of
``(seed, step)`` (random sampling with replacement, as the reference), so a resumed run and a DDP run
see exactly the images an uninterrupted single-process run sees.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm import tqdm

from ..config import RunConfig, dump_config
from ..data.transforms import pad_collate
from ..errors import CheckpointError, ConfigError, FCNError
from ..io import atomic_write
from ..losses import dice_loss2d, pixel_loss
from ..metrics import named
from ..models import FCN, freeze
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
from .distributed import DistInfo, setup
from .evaluator import evaluate
from .logging import RunLogger, plot_curves
from .memory import retained_heap
from .runlock import run_lock
from .schedule import lr_at

__all__ = [
    "StepSampler",
    "TrainingDiverged",
    "amp_dtype",
    "calibrate_loss_scale",
    "fit",
    "resolve_device",
    "write_grid",
]


class TrainingDiverged(FCNError, RuntimeError):
    """The loss became NaN or infinite."""


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``; a device that is not here is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"device {name!r}: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(f"device {name!r}: no CUDA device is available here; use cpu or auto")
        if device.index is not None and device.index >= count:
            raise ConfigError(f"device {name!r}: only {count} CUDA device(s) here (cuda:0 … cuda:{count - 1})")
    return device


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


def _to(y: Any, device: torch.device) -> Any:
    return {k: v.to(device) for k, v in y.items()} if isinstance(y, dict) else y.to(device)


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
    from ``checkpoints/last`` exactly where it stopped.
    """
    device = resolve_device(cfg.train.device)
    # CPU: keep freed activations and gradients in the process (engine/memory.py; ~1.3x per VGG16 step)
    main_rank = os.environ.get("RANK", "0") == "0"
    with run_lock(Path(run_dir), enabled=main_rank), retained_heap(cfg.train.retain_memory and device.type == "cpu"):
        return _fit(cfg, Path(run_dir), device, resume=resume, progress=progress)


def _fit(cfg: RunConfig, run_dir: Path, device: torch.device, *, resume: bool, progress: bool) -> dict[str, Any]:
    dist = setup(device)
    tc = cfg.train
    torch.manual_seed(tc.seed)
    train_ds, val_ds = build_datasets(cfg)
    model = build_model(cfg, train_ds).to(device)
    ckpt_dir = run_dir / "checkpoints"
    start, best = 0, -1.0
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
    ddp_model: torch.nn.Module = DistributedDataParallel(model) if dist.world > 1 else model
    optimizer = make_optimizer(model, tc)
    heads = model.heads if model.multi_head else model.num_classes
    weights = None if model.multi_head else class_weights(tc.class_weights, train_ds, model.num_classes)
    weight = None if weights is None else torch.tensor(weights, dtype=torch.float32, device=device)
    if weights is not None and dist.main and not resume:
        with atomic_write(run_dir / "class_weights.json", "w") as f:
            json.dump(dict(zip(train_ds.classes, weights.round(6).tolist(), strict=False)), f, indent=2)
    dtype = amp_dtype(cfg, device)
    scaler: torch.amp.GradScaler | None = None
    loader = DataLoader(
        _Seeded(train_ds),
        batch_sampler=StepSampler(len(train_ds), cfg.data.batch_size, tc.seed, 0, 0, dist),
        collate_fn=pad_collate,
        num_workers=cfg.data.workers,
        pin_memory=device.type == "cuda",
    )
    if resume:
        for stale in ckpt_dir.glob(".*.tmp"):  # temp files of a write that a kill interrupted
            stale.unlink(missing_ok=True)
        start, best, state = _restore(model, optimizer, ckpt_dir / "last", run_dir)
        if dtype is torch.float16 and state.get("scaler"):
            scaler = torch.amp.GradScaler(device.type)
            scaler.load_state_dict(state["scaler"])
    loader.batch_sampler.start = start * tc.iter_size  # type: ignore[union-attr]
    loader.batch_sampler.stop = tc.max_iter * tc.iter_size  # type: ignore[union-attr]
    batches = iter(loader)  # created before the RNG state is restored: its seed draw is not part of the run
    if resume:
        try:
            torch.set_rng_state(state["rng"])
        except RuntimeError as e:
            raise CheckpointError(f"{ckpt_dir / 'last'}: malformed training state: rng ({e})") from None
    logger = RunLogger(run_dir, enabled=dist.main)
    if resume:
        logger.truncate_after(start)
    info = CheckpointInfo(
        arch=model.arch,
        model_kwargs=model_kwargs(model, cfg.model.width),
        classes=list(train_ds.classes),
        preprocessing=preprocessing(cfg).to_dict(),
        config=cfg.to_dict(),
    )
    bar = tqdm(total=tc.max_iter, initial=start, disable=not (progress and dist.main), desc="train", dynamic_ncols=True)
    ddp_model.train()
    t0, seen, metrics = time.perf_counter(), 0, {}
    for step in range(start, tc.max_iter):
        lr = lr_at(step, tc)
        for group in optimizer.param_groups:
            group["lr"] = lr * group["lr_mult"]
        total: Any = 0.0
        for _ in range(tc.iter_size):
            x, y = next(batches)
            x, y = x.to(device, non_blocking=True), _to(y, device)
            if tc.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            if dtype is torch.float16 and scaler is None:  # measured on the first batch
                scale = tc.loss_scale or calibrate_loss_scale(
                    model, lambda x=x, y=y: _loss(model(x), y, cfg, DistInfo(), weight)
                )
                if dist.world > 1:  # every rank must scale alike, or the gradient average is wrong
                    shared = torch.tensor([scale], device=device)
                    torch.distributed.all_reduce(shared, op=torch.distributed.ReduceOp.MIN)
                    scale = float(shared.item())
                scaler = torch.amp.GradScaler(device.type, init_scale=scale)
            with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                out = ddp_model(x)
            loss = _loss(out, y, cfg, dist, weight) / tc.iter_size  # fp32: the losses cast the scores up
            (scaler.scale(loss) if scaler is not None else loss).backward()
            total += loss.detach() / dist.world  # this rank's share of the global loss, kept on the device
            seen += x.shape[0] * dist.world
        if dist.world > 1:
            total = total.double()
            torch.distributed.all_reduce(total)
        # Reading the loss on the host waits for the device: on CUDA only when it is logged (a NaN in
        # between is caught there, and checkpoints refuse non-finite weights); on the CPU it is free.
        done = step + 1
        if device.type == "cpu" or done % tc.log_every == 0 or done == tc.max_iter:
            total = float(total)
            if not math.isfinite(total):
                raise TrainingDiverged(
                    f"loss became {total} at step {step}: with train.normalize={tc.normalize}, learning rate "
                    f"{tc.lr:g} is "
                    + (
                        "too high for the summed loss (the reference uses 1e-10…1e-14)"
                        if not tc.normalize
                        else "too high"
                    )
                    + f"; the last good checkpoint is {ckpt_dir / 'last.safetensors'}"
                )
        if scaler is not None:  # skips the step (and lowers the scale) if a gradient overflowed
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        bar.update(1)
        if done % tc.log_every == 0 or done == tc.max_iter:
            rate = seen / (time.perf_counter() - t0)
            bar.set_postfix(loss=f"{total:.4g}", img_s=f"{rate:.1f}")
            logger.log(done, loss=total, lr=lr, images_per_s=rate)
        last = done == tc.max_iter
        if done % tc.eval_every == 0 or last:
            metrics = evaluate(
                model, val_ds, heads, device=device, rank=dist.rank, world=dist.world, max_images=cfg.eval.max_images
            )
            main = metrics if "mean_iu" in metrics else next(iter(metrics.values()))
            logger.log(done, **{k: main[k] for k in ("pixel_accuracy", "mean_accuracy", "mean_iu", "fw_iu")})
            if dist.main and main["mean_iu"] > best:
                best = main["mean_iu"]
                _save(model, info, done, best, ckpt_dir / "best")
        if dist.main and (done % tc.checkpoint_every == 0 or last):
            _save(model, info, done, best, ckpt_dir / "last", optimizer, scaler)
    bar.close()
    logger.close()
    if dist.main and metrics:
        with atomic_write(run_dir / "metrics.json", "w") as f:
            json.dump(_public(_named(metrics, train_ds)), f, indent=2)
        plot_curves(run_dir)
        from ..viz import save_confusion

        for head, m in metrics.items() if "confusion" not in metrics else [("", metrics)]:
            names = list(train_ds.classes) if head in ("", "sem") else list(getattr(train_ds, "geometric_classes", []))
            save_confusion(run_dir / f"confusion{'_' + head if head else ''}.png", np.array(m["confusion"]), names)
        write_grid(
            model,
            val_ds,
            run_dir / "grid.png",
            preprocessing(cfg),
            list(train_ds.classes),
            cfg.eval.grid_images,
            device,
        )
    return metrics


def write_grid(model: FCN, ds: Dataset, path: Path, pre: Any, classes: list[str], n: int, device: torch.device) -> None:
    """``grid.png``: image | truth | prediction for the first ``n`` validation images."""
    from ..viz import save_grid
    from .evaluator import predict_batch

    rows = []
    for i in range(min(n, len(ds))):  # type: ignore[arg-type]
        x, y = ds[i]
        pred = predict_batch(model.eval(), torch.as_tensor(x).unsqueeze(0).to(device).float())
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
    model: FCN, info: CheckpointInfo, step: int, best: float, path: Path, optimizer: Any = None, scaler: Any = None
) -> None:
    bad = [n for n, p in model.named_parameters() if not torch.isfinite(p).all()]
    if bad:  # never overwrite a good checkpoint with a diverged one
        raise TrainingDiverged(
            f"weights became non-finite by step {step} ({', '.join(bad[:3])}…): the learning rate is too high "
            f"for this loss normalisation; the last good checkpoint is {path.with_suffix('.safetensors')}"
        )
    info.step, info.best_mean_iu = step, best
    save_checkpoint(
        path, model, info, optimizer=optimizer, scaler=scaler, rng_state=torch.get_rng_state() if optimizer else None
    )


def _restore(
    model: FCN, optimizer: torch.optim.Optimizer, path: Path, run_dir: Path
) -> tuple[int, float, dict[str, Any]]:
    """Load weights and optimizer from ``path``; the step, the best mean IU and the whole training state."""
    weights = path.with_suffix(".safetensors")
    if not weights.is_file():
        raise CheckpointError(f"{weights}: no checkpoint to resume from in {run_dir}")
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
