"""Batch prediction: resumable, shardable, with a manifest written as it goes.

:func:`predict_batch` segments :class:`~fcnseg.inference.layout.Job`\\ s with a
:class:`~fcnseg.inference.Segmenter`. Every file is written atomically and recorded in ``OUT``'s ledger
(:class:`~fcnseg.writes.Ledger`: claimed before it is written, then its size and time once whole), so "complete"
is well defined: a job whose output files the ledger lists as written whole and unchanged is skipped on a rerun
(``overwrite`` forces it); files that merely bear output names do not count, and are not written over unless
``overwrite`` says so. An output that would replace an input is always refused. One predict writes a folder at a
time (``OUT/.lock``). Each process appends one JSON line per finished job to ``OUT/.manifest.rank<R>.jsonl``;
:func:`merge_manifest` folds those (and any left by a killed run) into ``OUT/manifest.jsonl``. Under
``torchrun`` rank *r* of *w* takes jobs ``r, r + w, …`` of the sorted list, so the union of the shards is the
single-process run. One input's failure (unreadable, a name too long for its outputs, a scale that leaves no
pixel) is that input's: it is reported on its own ``skipped:`` line and the others go on.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from ..errors import DataError, FCNError, printable
from ..files import read_bytes
from ..io import atomic_write, clean_stale_temps, read_image, read_label_png, write_label_png
from ..json_safe import loads_json
from ..runtime.heads import head_classes as head_classes_of
from ..viz import overlay, palette_for, save_grid
from ..writes import Ledger, check_targets, claim_folder, folder_lock, open_append, real_path
from .layout import Job, by_shape, output_rels
from .predictor import Segmenter

__all__ = ["BatchOptions", "BatchSummary", "merge_manifest", "predict_batch", "predict_job", "shard", "write_grid"]

MANIFEST = "manifest.jsonl"
#: errors of one output file that are that input's alone (its name), not the disk's: the run goes on
_PER_INPUT = {errno.ENAMETOOLONG, errno.EILSEQ, errno.EINVAL}


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


def predict_job(
    seg: Segmenter,
    job: Job,
    out: Path,
    opts: BatchOptions,
    classes: Sequence[str],
    *,
    ledger: Ledger | None = None,
) -> dict[str, Any]:
    """Segment one image and write its files (recorded in ``ledger``); returns its manifest record.

    Raises:
        FCNError: this input failed (unreadable, a scale that leaves it no pixel, a name too long …), naming it.
    """
    started = time.perf_counter()
    image = read_image(job.source)
    check_scales(job, image.shape[:2], opts.scales)
    probs = None
    try:
        if opts.probs and not opts.tile:  # one forward pass gives both the probabilities and the labels
            probs = seg.probabilities(image, flip=opts.flip, scales=opts.scales)
            labels = _argmax(probs)
        else:
            labels = seg.predict(image, tile=opts.tile, overlap=opts.overlap, flip=opts.flip, scales=opts.scales)
    except FCNError as e:
        raise _of_input(job, e) from None
    return write_outputs(job, image, labels, probs, out, opts, classes, started, ledger=ledger)


def check_scales(job: Job, size: tuple[int, int], scales: Sequence[float]) -> None:
    """Refuse (for this input alone) a ``--scales`` value that shrinks the image to no pixel."""
    h, w = size
    for s in scales:
        if int(h * s) < 1 or int(w * s) < 1:
            raise DataError(
                f"{printable(job.source)}: --scales {s:g} makes this {w}×{h} image {int(w * s)}×{int(h * s)} "
                "pixels; skipped (use larger scales for small images)"
            )


def _of_input(job: Job, e: FCNError) -> FCNError:
    """``e`` naming the input it is about, if it does not already."""
    return e if str(job.source) in str(e) else type(e)(f"{printable(job.source)}: {e}")


def write_outputs(
    job: Job,
    image: np.ndarray,
    labels: Any,
    probs: Any,
    out: Path,
    opts: BatchOptions,
    classes: Sequence[str],
    started: float,
    *,
    ledger: Ledger | None = None,
) -> dict[str, Any]:
    """Write one image's files (overlay, probabilities, the mask last), claimed in ``ledger`` before and recorded
    whole after; returns its manifest record. Masks of models with more than 256 classes are 16-bit PNGs."""
    label_maps = labels if isinstance(labels, dict) else {"": labels}
    prob_maps = probs if isinstance(probs, dict) else {"": probs}
    rels = output_rels(job, list(label_maps), probs=prob_maps.get(next(iter(label_maps))) is not None)
    if ledger is not None:
        ledger.claim(rels)
    try:
        present = _write_files(job, image, label_maps, prob_maps, out, opts, classes)
    except OSError as e:
        if e.errno not in _PER_INPUT:
            raise  # the disk's (full, read-only): the run stops, naming the file
        raise DataError(
            f"{printable(job.source)}: cannot write its output {printable(e.filename or out)} ({e.strerror})"
        ) from None
    if ledger is not None:
        ledger.done(rels)
    return {
        "input": str(job.source),
        "outputs": rels,
        "classes": present,
        "seconds": round(time.perf_counter() - started, 4),
    }


def _write_files(
    job: Job,
    image: np.ndarray,
    label_maps: dict[str, Any],
    prob_maps: dict[str, Any],
    out: Path,
    opts: BatchOptions,
    classes: Sequence[str],
) -> dict[str, list[str]]:
    """The files of one image; returns the classes present in each head's mask (by name, never wrapped)."""
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
        write_label_png(out / f"{stem}.png", mask, palette if palette is not None else _voc())  # the mask last
        values = [int(v) for v in np.unique(mask)]
        present[head or "labels"] = [head_classes[v] if v < len(head_classes) else str(v) for v in values]
    return present


def _voc() -> np.ndarray:
    from ..data.palette import voc_palette

    return voc_palette()


def _argmax(probs: Any) -> Any:
    if isinstance(probs, dict):
        return {k: _argmax(v) for k, v in probs.items()}
    from .tiling import label_map

    return label_map(probs, 0)


def is_complete(job: Job, out: Path, heads: Sequence[str], opts: BatchOptions, ledger: Ledger | None = None) -> bool:
    """Whether every output file of ``job`` was written whole by fcnseg and is unchanged since (``ledger``:
    ``out``'s, read here when not given). A file that merely bears an output name does not count."""
    ledger = ledger if ledger is not None else Ledger(out)
    probs = opts.probs and not opts.tile
    return all(ledger.whole(rel) for rel in output_rels(job, heads, probs=probs))


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
    lock: bool = True,
) -> BatchSummary:
    """Segment ``jobs`` into ``out`` (skipping complete ones unless ``overwrite``); one manifest line each.

    Nothing is written over an input (compared by real paths), nor over a file this command did not write in ``out``
    unless ``overwrite``. ``lock``: hold ``out``'s lock for the run (rank 0; callers that hold it pass False).
    ``after_each(n)`` is called after the n-th finished job (a hook for tests and progress reporting).

    Raises:
        DataError: an output would replace an input or a file this command did not write, or another predict
            holds ``out``.
    """
    held = folder_lock(out, holder="fcnseg predict") if lock and rank == 0 else contextlib.nullcontext()
    with held:
        ledger = claim_folder(out, kind="predict")
        clean_stale_temps(out)
        heads = heads_of(seg)
        probs = opts.probs and not opts.tile
        extra = [MANIFEST, *(["grid.png"] if opts.grid and rank == 0 else [])]
        targets = [*extra, *(rel for job in jobs for rel in output_rels(job, heads, probs=probs))]
        sources = {real_path(j.source): str(j.source) for j in jobs}
        check_targets(ledger, targets, inputs=sources, overwrite=overwrite)
        summary = BatchSummary()
        todo = []
        for job in jobs:
            if not overwrite and is_complete(job, out, heads, opts, ledger):
                summary.skipped += 1
            else:
                todo.append(job)
        todo = by_shape(todo)  # each image size once after another: engines compiled per shape compile it once
        seg.expect(len(todo) * (2 if opts.flip else 1) * len(opts.scales))
        part = f".manifest.rank{rank}.jsonl"
        ledger.claim([part])
        with open_append(out / part) as manifest:
            shown = None if progress and len(todo) > 1 else True  # None: a bar on a terminal only, never into a file
            bar = tqdm(total=len(todo), desc="predict", disable=shown)
            for records in _records(seg, todo, out, opts, classes, ledger):
                for record in records:
                    bar.update(1)
                    if isinstance(record, FCNError):  # on its own line, not inside the bar; names escaped
                        tqdm.write(f"skipped: {printable(record)}", file=sys.stderr)
                        summary.failed += 1
                        summary.errors.append(str(record))
                        continue
                    _append(manifest, record)
                    summary.done += 1
                    if after_each is not None:
                        after_each(summary.done)
            bar.close()
        if opts.grid and rank == 0:
            write_grid(out, jobs, heads, classes, opts.grid, ledger=ledger)
    return summary


def write_grid(
    out: Path,
    jobs: Sequence[Job],
    heads: Sequence[str],
    classes: Sequence[str],
    n: int,
    *,
    ledger: Ledger | None = None,
) -> Path | None:
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
    ledger = ledger if ledger is not None else Ledger(out)
    ledger.claim(["grid.png"])
    path = save_grid(out / "grid.png", rows, titles=["image", "prediction"], classes=names)
    ledger.done(["grid.png"])
    return path


def _records(
    seg: Segmenter, todo: Sequence[Job], out: Path, opts: BatchOptions, classes: Sequence[str], ledger: Ledger
) -> Any:
    """Manifest records (or the FCNError of a failed input), one list per model call."""
    if not opts.batchable:
        for job in todo:
            try:
                yield [predict_job(seg, job, out, opts, classes, ledger=ledger)]
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
                    return write_outputs(c[0], c[1], mask, None, out, opts, classes, started, ledger=ledger)
                except FCNError as e:
                    return e

            yield list(pool.map(write, work))


def _append(manifest: IO[str], record: dict[str, Any]) -> None:
    manifest.write(json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n")
    manifest.flush()
    os.fsync(manifest.fileno())


#: a manifest holds a few hundred bytes per input
_MAX_MANIFEST = 1 << 32


def merge_manifest(out: Path, *, ledger: Ledger | None = None) -> Path:
    """Fold ``.manifest.rank*.jsonl`` into ``manifest.jsonl`` (one line per input, newest wins), atomically.

    Call it with ``out``'s lock held (the predict command does), so that no other predict appends meanwhile.
    """
    ledger = ledger if ledger is not None else Ledger(out)
    target = out / MANIFEST
    records: dict[str, dict[str, Any]] = {}
    parts = sorted(p for p in out.glob(".manifest.rank*.jsonl") if ledger.owns(p.name))
    for path in [target, *parts]:
        if not os.path.lexists(path) or (path == target and not ledger.owns(MANIFEST)):
            continue  # a manifest.jsonl fcnseg did not write is not read (check_targets refused writing over it)
        text = read_bytes(path, limit=_MAX_MANIFEST, what="predict manifest").decode("utf-8", "replace")
        for line in text.splitlines():
            try:
                record = loads_json(line, str(path))
                records[record["input"]] = record
            except (FCNError, KeyError, TypeError):
                continue  # a line cut by a kill, or not fcnseg's: its job is redone or skipped by its files
    ledger.claim([MANIFEST])
    with atomic_write(target, "w") as f:
        for key in sorted(records):
            f.write(json.dumps(records[key], ensure_ascii=False) + "\n")
    ledger.done([MANIFEST])
    for path in parts:
        path.unlink(missing_ok=True)
    ledger.forget([p.name for p in parts])
    ledger.compact()
    return target
