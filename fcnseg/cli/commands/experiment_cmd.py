"""``fcnseg experiment miniature [--out DIR] [--device cpu|cuda] [--scale small|paper] [--report DIR]``;
``fcnseg experiment classifier [--out FILE]`` (the demo's shipped classifier)."""

from __future__ import annotations

import argparse

from ._common import add_device_arg


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("experiment", help="reproduce the paper's findings (Table 2 in miniature)")
    esub = p.add_subparsers(dest="experiment", required=True, metavar="EXPERIMENT")
    m = esub.add_parser(
        "miniature",
        help="pretrain a VGG16-pattern classifier, convolutionalize, fine-tune FCN-32s-fixed/32s/16s/8s, "
        "at-once and from scratch; evaluate on held-out scenes; write RESULTS.md",
    )
    m.add_argument("--out", default="runs/miniature", help="run folder (checkpoints, logs)")
    add_device_arg(m, default="cpu")
    m.add_argument(
        "--scale",
        default="small",
        choices=["smoke", "small", "paper"],
        help="small: ~40 min on a 2-core CPU; paper: VGG16 widths, 500-px scenes (a GPU); smoke: seconds",
    )
    m.add_argument("--report", default="docs", help="where RESULTS.md and results/ go ('-' for none)")
    m.set_defaults(func=run)
    c = esub.add_parser(
        "classifier",
        help="pretrain the demo's VGG16-pattern classifier (the file fcnseg ships; same bytes on the same torch "
        "build and CPU type)",
    )
    c.add_argument("--out", default="shapes-vgg16-w1_16.safetensors", help="where to write it")
    c.set_defaults(func=run_classifier)


def run_classifier(args: argparse.Namespace) -> int:
    import hashlib

    from ...experiments.demo import pretrain_demo_classifier

    path = pretrain_demo_classifier(args.out)
    print(f"wrote {path} (sha256 {hashlib.sha256(path.read_bytes()).hexdigest()})")
    return 0


def run(args: argparse.Namespace) -> int:
    from ...experiments import run_miniature
    from ._common import device_of

    result = run_miniature(args.out, scale=args.scale, device=str(device_of(args)),
                           report=None if args.report == "-" else args.report)  # fmt: skip
    for net in result["nets"].values():
        print(f"{net['label']:<22} mean IU {100 * net['mean_iu']:5.1f}   boundary mean IU "
              f"{100 * net['boundary_mean_iu']:5.1f}")  # fmt: skip
    return 0
