"""``fcnseg demo``: the whole pipeline on built-in synthetic data, on a CPU, in a few minutes.

Writes a synthetic dataset (VOC layout), trains a small FCN-8s, evaluates it with the paper's four
metrics, segments held-out images, and leaves everything in ``runs/demo/``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ...config import load_config
from ...data.check import write_voc_layout
from ...engine.trainer import fit

#: the demo recipe: a quarter-width FCN-8s on ResNet-18 (batch norm trains quickly from scratch),
#: the modern recipe (normalised loss, poly LR, flips), 96-px synthetic scenes
DEMO = [
    "model.name=fcn8s_resnet18",
    "model.width=0.5",
    "data.name=synthetic",
    "data.options={n: 4000, size: 96}",
    "data.val_options={n: 100}",
    "data.preprocessing=imagenet",
    "data.flip=true",
    "data.batch_size=8",
    "train.lr=0.05",
    "train.momentum=0.9",
    "train.weight_decay=0.0001",
    "train.normalize=true",
    "train.schedule=poly",
    "train.log_every=25",
    "train.eval_every=500",
    "train.checkpoint_every=500",
]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="train, evaluate and run a small FCN-8s on synthetic data (a few CPU minutes)")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--steps", type=int, default=2000, help="training steps (batch 8)")
    p.add_argument("--device", default="auto")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    t0 = time.perf_counter()
    data = write_voc_layout(out / "data", n=40, size=96, seed=7, val_fraction=0.5)
    print(f"[1/3] wrote a synthetic dataset in VOC layout: {data}")
    cfg = load_config(None, [*DEMO, f"train.max_iter={args.steps}", f"train.device={args.device}"])
    print(f"[2/3] training {cfg.model.name} (width {cfg.model.width}) for {args.steps} steps …")
    metrics = fit(cfg, out, progress=not args.quiet)
    print(
        f"      validation: pixel acc {metrics['pixel_accuracy']:.3f}  mean acc {metrics['mean_accuracy']:.3f}  "
        f"mean IU {metrics['mean_iu']:.3f}  f.w. IU {metrics['fw_iu']:.3f}"
    )
    from ..main import build_parser
    from . import predict_cmd

    images = sorted((data / "JPEGImages").glob("synth_val_*.jpg"))[:8]
    print("[3/3] segmenting held-out images …")
    ckpt = out / "checkpoints" / "best.safetensors"
    predict_cmd.run(
        build_parser().parse_args(
            ["predict", "--checkpoint", str(ckpt), *map(str, images), "--out", str(out / "predictions")]
        )
    )
    print(f"\ndone in {time.perf_counter() - t0:.0f} s. Results in {out}/:")
    for name in ("metrics.json", "curves.png", "grid.png", "predictions/", "checkpoints/best.safetensors", "log.csv"):
        print(f"  {out / name}")
    print("\nnext:")
    print(f"  fcnseg eval --checkpoint {out}/checkpoints/best.safetensors")
    print(f"  fcnseg predict --checkpoint {out}/checkpoints/best.safetensors YOUR_IMAGES --out preds/")
    print(f"  fcnseg data check {out}/data --dataset voc")
    print("  fcnseg train configs/synthetic-fcn8s.yaml")
    return 0
