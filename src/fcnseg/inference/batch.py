"""Batch prediction: resumable, shardable, with a manifest written as it goes.

:func:`predict_batch` segments :class:`~fcnseg.inference.layout.Job`\\ s with a
:class:`~fcnseg.inference.Segmenter`. Every file is written atomically, so "complete" is well defined:
a job whose output files all exist is skipped on a rerun (``overwrite`` forces it). Each process appends
one JSON line per finished job to ``OUT/.manifest.rank<R>.jsonl`` and flushes it; :func:`merge_manifest`
folds those (and any left by a killed run) into ``OUT/manifest.jsonl``. Under ``torchrun`` rank *r* of
*w* takes jobs ``r, r + w, …`` of the sorted list, so the union of the shards is the single-process run.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from ..errors import FCNError
from ..io import atomic_write, clean_stale_temps, read_image, read_label_png, write_palette_png
from ..runtime.heads import head_classes as head_classes_of
from ..viz import overlay, palette_for, save_grid
from .layout import Job, output_files
from .predictor import Segmenter

__all__ = ["BatchOptions", "BatchSummary", "merge_manifest", "predict_batch", "predict_job", "shard", "write_grid"]

MANIFEST = "manifest.jsonl"


@dataclass(frozen=True)
class BatchOptions:
    """What to compute and write for each image."""

    alpha: float = 0.5
    probs: bool = False
    grid: int = 0  # grid.png of the first N images (image | prediction), as eval's --grid N
    tile: int | None = None
    overlap: int = 128
    flip: bool = False
    scales: tuple[float, ...] = (1.0,)
    batch_size: int = 1  # same-size images scored together (plain scoring only: no tiles, TTA or probabilities)

    @property
    def batchable(self) -> bool:
        return self.batch_size > 1 and not (self.tile or self.flip or self.probs or self.scales != (1.0,))


@dataclass
class BatchSummary:
    done: int = 0
    skipped: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def shard(jobs: Sequence[Job], rank: int, world: int) -> list[Job]:
    """Rank ``rank``'s share of the (sorted) jobs: every ``world``-th one, starting at ``rank``."""
    return list(jobs[rank::world])


def heads_of(seg: Segmenter) -> list[str]:
    model = seg.model
    return list(model.heads) if getattr(model, "multi_head", False) else [""]


def predict_job(seg: Segmenter, job: Job, out: Path, opts: BatchOptions, classes: Sequence[str]) -> dict[str, Any]:
    """Segment one image and write its files; returns its manifest record."""
    started = time.perf_counter()
    image = read_image(job.source)
    probs = None
    if opts.probs and not opts.tile:  # one forward pass gives both the probabilities and the labels
        probs = seg.probabilities(image, flip=opts.flip, scales=opts.scales)
        labels = _argmax(probs)
    else:
        labels = seg.predict(image, tile=opts.tile, overlap=opts.overlap, flip=opts.flip, scales=opts.scales)
    return write_outputs(job, image, labels, probs, out, opts, classes, started)


def write_outputs(
    job: Job,
    image: np.ndarray,
    labels: Any,
    probs: Any,
    out: Path,
    opts: BatchOptions,
    classes: Sequence[str],
    started: float,
) -> dict[str, Any]:
    """Write one image's files (overlay, probabilities, grid, the mask last); returns its manifest record."""
    label_maps = labels if isinstance(labels, dict) else {"": labels}
    prob_maps = probs if isinstance(probs, dict) else {"": probs}
    palette = palette_for(classes) if classes else None
    present: dict[str, list[str]] = {}
    names = head_classes_of(label_maps, classes=classes)  # the checkpoint's classes are its first head's
    for head, mask in label_maps.items():
        stem = f"{job.stem}_{head}" if head else job.stem
        head_classes = names[head]
        with atomic_write(out / f"{stem}_overlay.jpg") as f:
            Image.fromarray(overlay(image, mask, palette=palette, alpha=opts.alpha)).save(f, format="JPEG", quality=92)
        if prob_maps.get(head) is not None:
            with atomic_write(out / f"{stem}_probs.npy") as f:
                np.save(f, prob_maps[head].cpu().numpy().astype(np.float16))
        write_palette_png(out / f"{stem}.png", mask, palette if palette is not None else _voc())  # the mask last
        values = np.unique(mask).tolist()
        present[head or "labels"] = [head_classes[v] if v < len(head_classes) else str(v) for v in values]
    files = output_files(job, out, list(label_maps), probs=prob_maps.get(next(iter(label_maps))) is not None)
    return {
        "input": str(job.source),
        "outputs": [f.relative_to(out).as_posix() for f in files],
        "classes": present,
        "seconds": round(time.perf_counter() - started, 4),
    }


def _voc() -> np.ndarray:
    from ..data.base import voc_palette

    return voc_palette()


def _argmax(probs: Any) -> Any:
    if isinstance(probs, dict):
        return {k: _argmax(v) for k, v in probs.items()}
    return probs.argmax(0).to(torch.uint8).cpu().numpy()


def is_complete(job: Job, out: Path, heads: Sequence[str], opts: BatchOptions) -> bool:
    probs = opts.probs and not opts.tile
    return all(f.is_file() for f in output_files(job, out, heads, probs=probs))


def predict_batch(
    seg: Segmenter,
    jobs: Sequence[Job],
    out: Path,
    opts: BatchOptions,
    *,
    classes: Sequence[str] = (),
    overwrite: bool = False,
    rank: int = 0,
    progress: bool = True,
    after_each: Callable[[int], None] | None = None,
) -> BatchSummary:
    """Segment ``jobs`` into ``out`` (skipping complete ones unless ``overwrite``); one manifest line each.

    ``after_each(n)`` is called after the n-th finished job (a hook for tests and progress reporting).
    """
    out.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(out)
    heads = heads_of(seg)
    summary = BatchSummary()
    todo = []
    for job in jobs:
        if not overwrite and is_complete(job, out, heads, opts):
            summary.skipped += 1
        else:
            todo.append(job)
    seg.expect(len(todo) * (2 if opts.flip else 1) * len(opts.scales))
    with open(out / f".manifest.rank{rank}.jsonl", "a", encoding="utf-8") as manifest:
        bar = tqdm(total=len(todo), desc="predict", disable=not progress or len(todo) < 2)
        for records in _records(seg, todo, out, opts, classes):
            for record in records:
                bar.update(1)
                if isinstance(record, FCNError):
                    tqdm.write(f"skipped: {record}", file=sys.stderr)  # on its own line, not inside the bar
                    summary.failed += 1
                    summary.errors.append(str(record))
                    continue
                _append(manifest, record)
                summary.done += 1
                if after_each is not None:
                    after_each(summary.done)
        bar.close()
    if opts.grid and rank == 0:
        write_grid(out, jobs, heads, classes, opts.grid)
    return summary


def write_grid(out: Path, jobs: Sequence[Job], heads: Sequence[str], classes: Sequence[str], n: int) -> Path | None:
    """``out/grid.png``: image | prediction (the first head's) for the first ``n`` jobs whose mask is written."""
    head = heads[0] if heads else ""
    rows = []
    for job in jobs:
        mask = out / f"{job.stem}_{head}.png" if head else out / f"{job.stem}.png"
        if len(rows) == n:
            break
        if mask.is_file():
            rows.append([read_image(job.source), read_label_png(mask)])
    if not rows:
        return None
    names = head_classes_of([head], classes=classes)[head]
    return save_grid(out / "grid.png", rows, titles=["image", "prediction"], classes=names)


def _records(seg: Segmenter, todo: Sequence[Job], out: Path, opts: BatchOptions, classes: Sequence[str]) -> Any:
    """Manifest records (or the FCNError of a failed input), one list per model call."""
    if not opts.batchable:
        for job in todo:
            try:
                yield [predict_job(seg, job, out, opts, classes)]
            except FCNError as e:
                yield [e]
        return
    from concurrent.futures import ThreadPoolExecutor

    def read(job: Job) -> Any:
        try:
            return job, read_image(job.source)
        except FCNError as e:
            return e

    # decoding and encoding release the GIL: threads keep the model fed (the next chunk is read while this
    # one is scored) and write the outputs side by side
    with ThreadPoolExecutor(max_workers=min(8, max(2, (os.cpu_count() or 2)))) as pool:
        chunks = [todo[i : i + opts.batch_size] for i in range(0, len(todo), opts.batch_size)]
        pending = pool.map(read, chunks[0]) if chunks else iter(())
        for n in range(len(chunks)):
            started = time.perf_counter()
            chunk = list(pending)
            if n + 1 < len(chunks):
                pending = pool.map(read, chunks[n + 1])
            readable = [c for c in chunk if not isinstance(c, FCNError)]
            labels = iter(seg.predict_many([image for _, image in readable]) if readable else [])
            work = [(c, None if isinstance(c, FCNError) else next(labels)) for c in chunk]

            def write(item: Any, started: float = started) -> Any:
                c, mask = item
                if isinstance(c, FCNError):
                    return c
                try:
                    return write_outputs(c[0], c[1], mask, None, out, opts, classes, started)
                except FCNError as e:
                    return e

            yield list(pool.map(write, work))


def _append(manifest: IO[str], record: dict[str, Any]) -> None:
    manifest.write(json.dumps(record, ensure_ascii=False) + "\n")
    manifest.flush()
    os.fsync(manifest.fileno())


def merge_manifest(out: Path) -> Path:
    """Fold ``.manifest.rank*.jsonl`` into ``manifest.jsonl`` (one line per input, newest wins), atomically."""
    target = out / MANIFEST
    records: dict[str, dict[str, Any]] = {}
    parts = sorted(out.glob(".manifest.rank*.jsonl"))
    for path in [target, *parts]:
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
                records[record["input"]] = record
            except (json.JSONDecodeError, KeyError, TypeError):
                continue  # a line cut by a kill: its job is redone or skipped by its files, not by this
    with atomic_write(target, "w") as f:
        for key in sorted(records):
            f.write(json.dumps(records[key], ensure_ascii=False) + "\n")
    for path in parts:
        path.unlink(missing_ok=True)
    return target
