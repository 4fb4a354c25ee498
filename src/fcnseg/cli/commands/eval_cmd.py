"""``fcnseg eval --checkpoint CKPT [--dataset NAME --root R --split S] [--out DIR]``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from . import COMMANDS
from ._common import (
    COUNT,
    NON_NEGATIVE,
    add_device_arg,
    add_engine_arg,
    add_model_args,
    add_overwrite_arg,
    calibration_images,
    device_of,
    load_model_args,
    number_in,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help=COMMANDS["eval"][1])
    add_model_args(p)
    p.add_argument("--dataset", help="dataset name (default: the checkpoint's training dataset)")
    p.add_argument("--root", help="the dataset's folder (default: the checkpoint's training data root)")
    p.add_argument("--split", help="default: the checkpoint's validation split")
    p.add_argument("--out", help="write metrics.json and confusion.png here")
    p.add_argument("--max-images", type=COUNT, help="score only the first N images (default: all)")
    add_device_arg(p)
    add_engine_arg(p)
    p.add_argument("--batch-size", type=COUNT, default=8, help="same-size images scored together (default 8)")
    p.add_argument(
        "--num-workers",
        type=number_in(0, 1024, kind=int),
        default=None,
        help="DataLoader workers (default: from the cores on CUDA, 0 on the CPU)",
    )
    p.add_argument(
        "--amp",
        action="store_true",
        help="score with PyTorch under bf16 autocast (fp16 on GPUs without bf16), whatever --engine says",
    )
    p.add_argument(
        "--grid",
        type=NON_NEGATIVE,
        default=4,
        metavar="N",
        help="with --out: grid.png of the first N images (image | truth | prediction; 0: none)",
    )
    add_overwrite_arg(p, "files in --out that fcnseg did not write (an earlier run's metrics.json …)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from ...data import eval_transforms, get_dataset
    from ...errors import printable
    from ...inference.auto import AutoEngine
    from ...runtime.checkpoint import preprocessing_of
    from ...runtime.evaluation import evaluate, write_grid
    from ...runtime.hardware import inference_dtype
    from ...runtime.heads import head_classes, report, write_metrics
    from ...train.data_path import auto_workers

    opened = load_model_args(args)
    model, info = opened.model, opened.info
    # the training data's section, else the dataset pretrained weights were published on (fcnseg weights)
    data_cfg = info.config.get("data") or (info.config.get("weights") or {}).get("eval_data") or {}
    name = args.dataset or data_cfg.get("name", "synthetic")
    split = args.split or data_cfg.get("val_split", "val")
    options = {} if args.dataset else split_options(data_cfg, split)
    pre = preprocessing_of(info)
    ds = get_dataset(
        name,
        args.root or data_cfg.get("root"),
        split,
        transforms=eval_transforms(pre),
        **options,
    )
    root = args.root or data_cfg.get("root")
    written = _claim_out(args, [opened.file, root if root and Path(root).exists() else None], list(model.heads))
    device = device_of(args)
    model = model.to(device)
    workers = auto_workers(device) if args.num_workers is None else args.num_workers
    dtype = (inference_dtype(device) or torch.bfloat16) if args.amp else None
    runner = (
        model
        if args.amp
        else AutoEngine(
            model,
            device=device,
            source=opened.file,
            reloadable=False,
            calibration=lambda: calibration_images(args, info),
            engine=args.engine,
        )
    )
    metrics = evaluate(
        runner,
        ds,
        dict(model.heads),
        device=device,
        max_images=args.max_images,
        progress=True,
        batch_size=args.batch_size,
        workers=workers,
        dtype=dtype,
    )
    names = head_classes(model.heads, ds, info.classes)
    scored = len(ds) if args.max_images is None else min(len(ds), args.max_images)
    print(f"{name} split {split!r}: {scored} image(s)")
    print(report(metrics, names))
    if written is not None:
        ledger, rels = written
        out = Path(args.out)
        ledger.claim(rels)
        write_metrics(out, metrics, names)
        if args.grid:
            write_grid(model, ds, out / "grid.png", pre, names[next(iter(names))], args.grid, device)
        ledger.done([r for r in rels if (out / r).is_file()])
        print(f"wrote {printable(out / 'metrics.json')}")
    return 0


def split_options(data: dict[str, Any], split: str) -> dict[str, Any]:
    """The dataset options a checkpoint's training config gives ``split``: ``options``, then ``val_options`` for its
    validation split or ``test_options`` for its held-out split (a split means what the run's report means)."""
    extra = {
        data.get("val_split", "val"): data.get("val_options"),
        data.get("test_split", "test"): data.get("test_options"),
    }.get(split)
    return {**(data.get("options") or {}), **(extra or {})}


def _claim_out(args: argparse.Namespace, inputs: list, heads: list[str]) -> tuple[Any, list[str]] | None:
    """``--out`` claimed before anything is computed: not an input or inside one (the data, the checkpoint), and
    its files (metrics.json, confusion pictures, grid.png) not over files fcnseg did not write there unless
    ``--overwrite``. Returns the folder's ledger and those files, or None without ``--out``."""
    if not args.out:
        return None
    from ...writes import check_targets, claim_folder, real_path

    given = [str(p) for p in inputs if p]
    ledger = claim_folder(args.out, kind="eval", inputs=given)
    rels = ["metrics.json", *(f"confusion{'_' + h if h else ''}.png" for h in heads)]
    rels += ["grid.png"] if args.grid else []
    check_targets(ledger, rels, inputs={real_path(p): p for p in given}, overwrite=args.overwrite)
    return ledger, rels
