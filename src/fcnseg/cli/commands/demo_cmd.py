"""``fcnseg demo``: the paper in five minutes on a CPU (:func:`fcnseg.experiments.demo.run_demo`).

Fine-tunes the shipped pretrained classifier as FCN-32s → FCN-16s → FCN-8s on synthetic scenes, evaluates
each on held-out scenes, prints one table and leaves pictures, metrics and a report in ``runs/demo/``.
"""

from __future__ import annotations

import argparse
import dataclasses

from . import COMMANDS
from ._common import add_device_arg, add_overwrite_arg, experiment_folder


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help=COMMANDS["demo"][1])
    p.add_argument("--out", default="runs/demo", help="run folder: checkpoints, pictures, report (default runs/demo)")
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="fine-tuning steps of FCN-32s and of FCN-16s, FCN-8s 3x (default 1500, batch 8)",
    )
    add_device_arg(p)
    p.add_argument(
        "--classifier",
        default=None,
        help="pretrained classifier: the shipped one (default), a .safetensors file, or 'train' to pretrain here",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_overwrite_arg(p, "an --out folder holding files the demo did not write")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ...errors import ConfigError
    from ...experiments.demo import run_demo, table
    from ...experiments.scale import DEMO

    scale = DEMO
    if args.steps is not None:
        if args.steps < 1:
            raise ConfigError(f"--steps {args.steps}: needs at least 1 step per stage")
        scale = dataclasses.replace(DEMO, seg_steps=args.steps, eval_every=min(DEMO.eval_every, args.steps))
    with experiment_folder(args.out, "demo", overwrite=args.overwrite, markers=("report.md",)):
        result = run_demo(args.out, scale=scale, device=args.device, classifier=args.classifier, quiet=args.quiet)
    print("\nheld-out scenes, " + str(scale.test_images) + " of " + str(scale.seg_size) + " px:")
    print(table(result))
    out = args.out
    print(
        f"\ndone in {result['wall_s']:.0f} s. Read {out}/report.md; pictures {out}/grid.png, {out}/curves.png, "
        f"{out}/confusion.png; numbers {out}/metrics.json"
    )
    print("\nnext:")
    print(f"  fcnseg predict --checkpoint {out}/checkpoints/best.safetensors YOUR_IMAGES --out preds/")
    print(f"  fcnseg eval --checkpoint {out}/checkpoints/best.safetensors --split test   # the held-out figure above")
    print(f"  fcnseg serve --checkpoint {out}/checkpoints/best.safetensors")
    print("  fcnseg train configs/synthetic-fcn8s.yaml")
    print("  fcnseg experiment miniature     # the paper's Table 2 in miniature, every net to its plateau (hours)")
    return 0
