"""Batch prediction as a Ray Data pipeline (``pip install 'fcnseg[ray]'``).

Two entry points:

* :class:`SegmentBatch` — a callable class for ``ray.data.Dataset.map_batches`` in users' own pipelines.
  Each Ray worker constructs it once (so the checkpoint is loaded once per worker) and calls it on
  batches holding an ``image`` column (``(H, W, 3)`` uint8 arrays) or a ``path`` column; it returns the
  batch with a ``mask`` column (``(H, W)`` uint8) and, with ``shares=True``, ``class_shares`` (the
  fraction of pixels of each class)::

      import ray
      from fcnseg.inference.ray_predict import SegmentBatch

      ds = ray.data.read_images("s3://bucket/photos", mode="RGB")
      ds = ds.map_batches(SegmentBatch, fn_constructor_kwargs={"checkpoint": "best.safetensors"},
                          concurrency=4, batch_size=8, num_gpus=1)

* :func:`predict_with_ray` — what ``fcnseg predict --ray`` runs: the same jobs, outputs, skipping and
  manifest as one process, with ``--num-workers`` replicas (one GPU each when CUDA is present).
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, FCNError, printable
from ..runtime.model_source import ModelSpec
from ..writes import Ledger, check_targets, claim_folder, folder_lock, open_append, real_path
from .batch import MANIFEST, BatchOptions, BatchSummary, is_complete, merge_manifest, predict_job, write_grid
from .layout import Job, output_rels, refuse_overwriting_inputs
from .predictor import SegmenterOptions

__all__ = ["RAY_BATCH", "RayOptions", "SegmentBatch", "predict_with_ray", "require_ray"]

log = logging.getLogger("fcnseg")

#: jobs per Ray task: enough to amortise Ray's per-task cost (about 10 ms), few enough to balance the workers
RAY_BATCH = 4


def require_ray() -> Any:
    """The ``ray`` module with Ray Data, or a one-line error naming the extra to install."""
    try:
        import ray
        import ray.data
    except ImportError as e:
        raise ConfigError(f"--ray needs Ray Data ({e.name} is missing): pip install 'fcnseg[ray]'") from None
    return ray


class SegmentBatch:
    """Segment a Ray Data batch with one checkpoint, loaded once per worker.

    Args:
        checkpoint: an fcnseg ``.safetensors`` checkpoint.
        device: ``auto`` (CUDA when the worker has one), ``cpu`` or ``cuda``.
        shares: also return ``class_shares``, a ``(K,)`` float array per image.
        threads: CPU threads per worker (default: the CPUs Ray gave it, at least 1).
        engine: ``auto`` (default; see :mod:`fcnseg.inference.auto`) or one engine name.
    """

    def __init__(
        self,
        checkpoint: str,
        *,
        device: str = "auto",
        shares: bool = False,
        threads: int | None = None,
        engine: str | None = None,
    ) -> None:
        import torch

        from .predictor import Segmenter

        torch.set_num_threads(
            threads or max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
        )
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.segmenter = Segmenter(checkpoint, device=device, engine=engine)
        self.shares = shares
        self.num_classes = int(self.segmenter.model.num_classes)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        from ..io import read_image

        if "image" in batch:
            images = list(batch["image"])
        elif "path" in batch:
            images = [read_image(p) for p in batch["path"]]
        else:
            raise ConfigError(f"SegmentBatch needs an 'image' or 'path' column; the batch has {sorted(batch)}")
        masks = [self.segmenter.predict(np.asarray(img, dtype=np.uint8)) for img in images]
        result = {**batch, "mask": masks}
        if self.shares:
            result["class_shares"] = np.stack(
                [np.bincount(m.ravel(), minlength=self.num_classes) / max(1, m.size) for m in masks]
            )
        return result


@dataclass(frozen=True)
class RayOptions:
    """Where ``fcnseg predict --ray`` runs: ``address`` (``local``: a Ray instance on this machine, or a cluster's
    address), ``workers`` model replicas (one GPU each when CUDA is present), and whether to redo finished jobs."""

    address: str = "local"
    workers: int = 2
    overwrite: bool = False


class _WriteOutputs:
    """The ``--ray`` worker: segment each job and write its files exactly as one process would."""

    def __init__(self, spec: ModelSpec, options: SegmenterOptions, out: str, opts: BatchOptions, threads: int) -> None:
        import torch

        from .predictor import Segmenter

        torch.set_num_threads(threads)
        self.segmenter = Segmenter(spec, **asdict(options))
        self.classes = self.segmenter.classes
        self.out, self.opts = Path(out), opts
        self.ledger = Ledger(self.out)  # every worker records what it writes in the folder's one ledger

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import json

        records, errors = [], []
        for source, stem in zip(batch["source"], batch["stem"], strict=True):
            try:
                record = predict_job(
                    self.segmenter,
                    Job(Path(str(source)), str(stem)),
                    self.out,
                    self.opts,
                    self.classes,
                    ledger=self.ledger,
                )
                records.append(json.dumps(record, ensure_ascii=False))
                errors.append("")
            except FCNError as e:
                records.append("")
                errors.append(str(e))
        return {"record": np.array(records, dtype=object), "error": np.array(errors, dtype=object)}


def predict_with_ray(
    spec: ModelSpec, options: SegmenterOptions, ray_options: RayOptions, jobs: list[Job], out: Path, opts: BatchOptions
) -> BatchSummary:
    """Run ``jobs`` with ``spec``'s model on Ray Data (``ray_options``: where, how many replicas)."""
    ray = require_ray()
    probe, classes = _probe(spec)
    refuse_overwriting_inputs(jobs, out, probe, probs=opts.probs and not opts.tile, grid=opts.grid)
    with folder_lock(out, holder="fcnseg predict"):
        return _run_ray(ray, spec, options, ray_options, jobs, out, opts, probe, classes)


def _run_ray(
    ray: Any,
    spec: ModelSpec,
    options: SegmenterOptions,
    ray_options: RayOptions,
    jobs: list[Job],
    out: Path,
    opts: BatchOptions,
    probe: list[str],
    classes: list[str],
) -> BatchSummary:
    """:func:`predict_with_ray` with ``out``'s lock held: the write rule checked, the jobs run, the manifest merged."""
    import torch

    ledger = claim_folder(out, kind="predict")
    probs = opts.probs and not opts.tile
    targets = [
        MANIFEST,
        *(["grid.png"] if opts.grid else []),
        *(r for j in jobs for r in output_rels(j, probe, probs=probs)),
    ]
    check_targets(
        ledger, targets, inputs={real_path(j.source): str(j.source) for j in jobs}, overwrite=ray_options.overwrite
    )
    summary = BatchSummary()
    todo = [j for j in jobs if ray_options.overwrite or not is_complete(j, out, probe, opts, ledger)]
    summary.skipped = len(jobs) - len(todo)
    if todo:
        gpus = 1 if torch.cuda.is_available() else 0
        threads = max(1, (os.cpu_count() or 1) // ray_options.workers)
        _init_ray(ray, ray_options.address, ray_options.workers)
        ds = ray.data.from_items([{"source": str(j.source), "stem": j.stem} for j in todo])
        with warnings.catch_warnings():  # Ray's own advice (max_restarts=0 as an extra kwarg) warns of itself
            warnings.simplefilter("ignore", DeprecationWarning)
            ds = ds.map_batches(
                _WriteOutputs,
                fn_constructor_args=(spec, options, str(out), opts, threads),
                batch_size=RAY_BATCH,
                compute=ray.data.ActorPoolStrategy(size=ray_options.workers),
                num_cpus=0 if gpus else threads,
                num_gpus=gpus,
                batch_format="numpy",
                max_restarts=0,  # a worker that dies fails its jobs (a rerun redoes them); no core_worker warning
            )
        ledger.claim([".manifest.rank-ray.jsonl"])
        with open_append(out / ".manifest.rank-ray.jsonl") as manifest:
            for row in ds.iter_rows():
                if row["error"]:
                    log.warning("skipped: %s", printable(row["error"]))
                    summary.failed += 1
                    continue
                manifest.write(row["record"] + "\n")
                summary.done += 1
        ray.shutdown()
    if opts.grid:
        write_grid(out, jobs, probe, classes, opts.grid, ledger=Ledger(out))
    merge_manifest(out)
    return summary


def _probe(spec: ModelSpec) -> tuple[list[str], list[str]]:
    """The heads of the model ``spec`` names, and its classes."""
    from ..runtime.model_source import load_model

    model, info = load_model(spec)
    return (list(model.heads) if getattr(model, "multi_head", False) else [""]), list(info.classes)


def _init_ray(ray: Any, address: str, workers: int) -> None:
    if ray.is_initialized():
        return
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
    if address == "local":
        ray.init(num_cpus=max(workers, os.cpu_count() or 1), **kwargs)
    else:
        ray.init(address=address, **kwargs)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    for name in ("ray", "ray.data"):  # Ray's own INFO/WARN lines (progress, authentication) are not the user's
        logging.getLogger(name).setLevel(logging.ERROR)
