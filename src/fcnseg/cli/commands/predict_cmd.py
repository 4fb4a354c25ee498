"""``fcnseg predict --checkpoint CKPT INPUTS... [--out DIR]``: palette masks, overlays and a manifest.

Outputs mirror the inputs' relative paths; a rerun into the same ``--out`` finishes only what is missing;
under ``torchrun`` each rank takes a shard; ``--ray`` runs the same job as a Ray Data pipeline.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ...errors import DataError
from . import COMMANDS
from ._common import (
    COUNT,
    FRACTION,
    NON_NEGATIVE,
    SCALE,
    add_device_arg,
    add_engine_arg,
    add_int8_args,
    add_model_args,
    spec_of,
)

DEFAULT_OUT = "predictions"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help=COMMANDS["predict"][1])
    add_model_args(p)
    p.add_argument("inputs", nargs="+", help="image files, folders (searched recursively) and globs")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"output folder, mirroring the inputs (default {DEFAULT_OUT}/)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="redo inputs whose outputs already exist, and write over files in --out that fcnseg did not write "
        "(never over an input)",
    )
    add_device_arg(p)
    p.add_argument(
        "--dtype",
        choices=["auto", "fp32", "bf16", "fp16"],
        default="auto",
        help="auto (default): the precision --engine chooses; fp32, bf16 or fp16 force PyTorch with that autocast",
    )
    p.add_argument("--alpha", type=FRACTION, default=0.5, help="overlay opacity, 0..1 (default 0.5)")
    p.add_argument("--probs", action="store_true", help="also write class probabilities as .npy (not with --tile)")
    p.add_argument("--tile", type=COUNT, help="sliding-window inference in tiles of this size (huge images)")
    p.add_argument("--overlap", type=NON_NEGATIVE, default=128, help="tile overlap in pixels (default 128)")
    p.add_argument("--flip", action="store_true", help="mirror test-time augmentation")
    p.add_argument("--scales", type=SCALE, nargs="+", default=[1.0], help="multi-scale test-time augmentation")
    p.add_argument(
        "--grid",
        type=NON_NEGATIVE,
        default=0,
        metavar="N",
        help="also write grid.png: image | prediction of the first N images, with a class legend",
    )
    p.add_argument(
        "--batch-size",
        type=COUNT,
        default=1,
        help="score up to N same-size images per forward pass (plain scoring: not with --tile, --flip, "
        "--scales or --probs; default 1)",
    )
    add_engine_arg(p)
    p.add_argument("--int8", action="store_true", help="the same as --engine onnxruntime-int8")
    p.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="run as a Ray Data pipeline: a local Ray instance, or the cluster at ADDRESS (needs fcnseg[ray])",
    )
    p.add_argument("--num-workers", type=COUNT, default=2, help="with --ray: model replicas (default 2)")
    add_int8_args(p)
    p.set_defaults(func=run)


def options(args: argparse.Namespace) -> Any:
    from ...inference.batch import BatchOptions

    if args.tile and args.overlap >= args.tile:
        raise DataError(f"--overlap {args.overlap}: must be smaller than --tile {args.tile}")
    if args.batch_size > 1 and (args.tile or args.flip or args.probs or tuple(args.scales) != (1.0,)):
        raise DataError(
            f"--batch-size {args.batch_size}: batches plain scoring only; drop --tile, --flip, --scales "
            "and --probs, or use --batch-size 1"
        )
    return BatchOptions(
        alpha=args.alpha,
        probs=args.probs,
        grid=args.grid,
        tile=args.tile,
        overlap=args.overlap,
        flip=args.flip,
        scales=tuple(args.scales),
        batch_size=args.batch_size,
    )


def segmenter_options(args: argparse.Namespace, device: str) -> Any:
    """The typed record of how the Segmenter runs (what a Ray worker gets too)."""
    from ...inference.predictor import SegmenterOptions

    return SegmenterOptions(
        device=device,
        engine="onnxruntime-int8" if args.int8 else args.engine,
        dtype=args.dtype,
        calibration=args.calibration,
        calibration_count=args.calibration_count,
    )


def run(args: argparse.Namespace) -> int:
    import contextlib

    from ...inference.batch import heads_of, merge_manifest, predict_batch, shard
    from ...inference.layout import refuse_overwriting_inputs
    from ...runtime.hardware import world_size
    from ...writes import folder_lock

    opts = options(args)
    out = Path(args.out)
    if args.ray:
        from ...inference.ray_predict import RayOptions, predict_with_ray

        jobs = _jobs(args, out)
        ray_options = RayOptions(address=args.ray, workers=args.num_workers, overwrite=args.overwrite)
        summary = predict_with_ray(spec_of(args), segmenter_options(args, args.device), ray_options, jobs, out, opts)
        return _report(summary, out, len(jobs))
    world = world_size()  # a stale WORLD_SIZE is refused before anything is loaded
    rank = 0
    if world > 1:
        import torch.distributed as dist

        dist.init_process_group("gloo")  # for the counts and the barrier only: models run on their own device
        rank = dist.get_rank()
    seg = _segmenter(args, rank_device(args.device, world))
    jobs = _jobs(args, out)
    refuse_overwriting_inputs(jobs, out, heads_of(seg), probs=opts.probs and not opts.tile, grid=opts.grid)
    mine = shard(jobs, rank, world)
    # one predict writes OUT at a time (rank 0 holds the lock through the merge): two runs into one folder would
    # otherwise both report success while the manifest missed the entries of one of them
    held = folder_lock(out, holder="fcnseg predict") if rank == 0 else contextlib.nullcontext()
    with held:
        summary = predict_batch(
            seg,
            mine,
            out,
            opts,
            classes=seg.classes,
            overwrite=args.overwrite,
            rank=rank,
            after_each=_fault_hook(),
            lock=False,
        )
        if world > 1:
            summary = _gather(summary)
        if rank == 0:
            merge_manifest(out)
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
    return _report(summary, out, len(jobs)) if rank == 0 else (1 if summary.failed else 0)


def _jobs(args: argparse.Namespace, out: Path) -> list:
    import logging

    from ...errors import printable
    from ...inference.layout import IMAGE_SUFFIXES, collect_inputs, plan_jobs

    ignored: list[Path] = []
    inputs, folders = collect_inputs(args.inputs, ignored=ignored)
    if ignored:  # said once, not skipped in silence
        suffixes = sorted({p.suffix.lower() or "(none)" for p in ignored})
        logging.getLogger("fcnseg").warning(
            "note: %d file(s) in the input folders are not images by their suffix and were left out (e.g. %s; "
            "suffixes %s); images are %s",
            len(ignored),
            printable(ignored[0]),
            " ".join(printable(x) for x in suffixes[:8]),
            " ".join(IMAGE_SUFFIXES),
        )
    if not inputs:
        raise DataError(f"no images found in {printable(' '.join(args.inputs))}")
    return plan_jobs(inputs, folders, out)


def _report(summary: Any, out: Path, total: int) -> int:
    from ...errors import printable

    parts = [f"wrote {summary.done} prediction(s) to {printable(out)}"]
    if summary.skipped:
        parts.append(f"skipped {summary.skipped} already complete (--overwrite redoes them)")
    if summary.failed:
        parts.append(f"{summary.failed} input(s) failed")
    print("; ".join(parts) + f"; manifest: {printable(out / 'manifest.jsonl')}")
    return 1 if summary.failed else 0


def rank_device(name: str, world: int) -> str:
    """``auto`` → CUDA when present; under torchrun with CUDA, each local rank on its own ``cuda:LOCAL_RANK``."""
    from ...runtime.hardware import local_device

    return str(local_device(name, world))


def _segmenter(args: argparse.Namespace, device: str) -> Any:
    from dataclasses import asdict

    from ...inference.predictor import Segmenter

    return Segmenter(spec_of(args), **asdict(segmenter_options(args, device)))


def _gather(summary: Any) -> Any:
    """Sum the ranks' counts on every rank (gloo: works whatever device the models run on)."""
    import torch
    import torch.distributed as dist

    counts = torch.tensor([summary.done, summary.skipped, summary.failed], dtype=torch.int64)
    dist.all_reduce(counts)
    summary.done, summary.skipped, summary.failed = (int(v) for v in counts)
    dist.barrier()  # every shard's manifest lines are on disk before rank 0 merges them
    return summary


def _fault_hook() -> Any:
    """``FCNSEG_TEST_EXIT_AFTER=N``: die like a SIGKILL after the N-th image (the crash-resume test's hook)."""
    raw = os.environ.get("FCNSEG_TEST_EXIT_AFTER")
    if not raw:
        return None
    limit = int(raw)

    def hook(n: int) -> None:
        if n >= limit:
            sys.stdout.flush()
            os._exit(137)

    return hook
