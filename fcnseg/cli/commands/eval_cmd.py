"""``fcnseg eval --checkpoint CKPT [--dataset NAME --root R --split S] [--out DIR]``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from ...data import get_dataset
from ...data.transforms import eval_transforms
from ...engine.checkpoint import preprocessing_of
from ...engine.data_path import auto_workers
from ...engine.device import inference_dtype
from ...engine.evaluator import evaluate
from ...io import atomic_write
from ...metrics import named
from ...viz import save_confusion
from ._common import COUNT, add_device_arg, add_model_args, device_of, load_model_args, number_in


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="the four metrics of a checkpoint on a dataset")
    add_model_args(p)
    p.add_argument("--dataset", help="dataset name (default: the checkpoint's training dataset)")
    p.add_argument("--root")
    p.add_argument("--split", help="default: the checkpoint's validation split")
    p.add_argument("--out", help="write metrics.json and confusion.png here")
    p.add_argument("--max-images", type=int)
    add_device_arg(p)
    p.add_argument("--batch-size", type=COUNT, default=8, help="same-size images scored together (default 8)")
    p.add_argument("--workers", type=number_in(0, 1024, kind=int), default=None,
                   help="DataLoader workers (default: from the cores on CUDA, 0 on the CPU)")  # fmt: skip
    p.add_argument("--amp", action="store_true", help="score under bf16 autocast (fp16 on GPUs without bf16)")
    p.add_argument(
        "--grid", type=int, default=4, metavar="N", help="with --out: grid.png of N images (image | truth | prediction)"
    )
    p.set_defaults(func=run)


def metrics_table(metrics: dict, classes: list[str]) -> str:
    lines = [
        f"pixel accuracy {metrics['pixel_accuracy']:.4f}   mean accuracy {metrics['mean_accuracy']:.4f}   "
        f"mean IU {metrics['mean_iu']:.4f}   f.w. IU {metrics['fw_iu']:.4f}",
        f"{'class':20s} {'IU':>7s} {'acc':>7s}",
    ]
    for i, (iu, acc) in enumerate(zip(metrics["iu"], metrics["accuracy"], strict=True)):
        name = classes[i] if i < len(classes) else str(i)
        fmt = lambda v: "    n/a" if v != v else f"{v:7.4f}"  # noqa: E731  (NaN: class absent)
        lines.append(f"{name:20s} {fmt(iu)} {fmt(acc)}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    model, info = load_model_args(args)
    data_cfg = info.config.get("data", {})
    name = args.dataset or data_cfg.get("name", "synthetic")
    options = {**data_cfg.get("options", {}), **(data_cfg.get("val_options") or {})} if not args.dataset else {}
    pre = preprocessing_of(info)
    ds = get_dataset(name, args.root or data_cfg.get("root"), args.split or data_cfg.get("val_split", "val"),
                     transforms=eval_transforms(pre), **options)  # fmt: skip
    heads = model.heads if model.multi_head else model.num_classes
    device = device_of(args)
    model = model.to(device)
    workers = auto_workers(device) if args.workers is None else args.workers
    dtype = (inference_dtype(device) or torch.bfloat16) if args.amp else None
    metrics = evaluate(model, ds, heads, device=device, max_images=args.max_images, progress=True,
                       batch_size=args.batch_size, workers=workers, dtype=dtype)  # fmt: skip
    results = metrics if model.multi_head else {"": metrics}
    for head, m in results.items():
        if head:
            print(f"[{head}]")
        print(metrics_table(m, info.classes if head in ("", "sem") else list(getattr(ds, "geometric_classes", []))))
        outside = m.get("unpredictable_labels", {})
        if outside.get("pixels"):
            k = len(m["iu"])
            print(f"warning: {outside['pixels']} labelled pixels carry values {outside['values']} that this model "
                  f"({k} classes, 0..{k - 1}) cannot predict; the metrics above leave them out "
                  "(a dataset with more classes than the model?)")  # fmt: skip
    if args.out:
        out = Path(args.out)
        with atomic_write(out / "metrics.json", "w") as f:
            geo = list(getattr(ds, "geometric_classes", []))
            names = {h: info.classes if h in ("", "sem") else geo for h in results}
            public = {h: {k: v for k, v in named(m, names[h]).items() if k != "confusion"} for h, m in results.items()}
            json.dump(public if model.multi_head else public[""], f, indent=2)
        for head, m in results.items():
            save_confusion(out / f"confusion{'_' + head if head else ''}.png", np.array(m["confusion"]), info.classes)
        if args.grid:
            from ...engine.trainer import write_grid

            write_grid(model, ds, out / "grid.png", pre, info.classes, args.grid, next(model.parameters()).device)
        print(f"wrote {out / 'metrics.json'}")
    return 0
