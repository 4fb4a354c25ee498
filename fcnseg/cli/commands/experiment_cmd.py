"""``fcnseg experiment miniature [--out DIR] [--device cpu|cuda] [--scale small|paper] [--report DIR]``;
``fcnseg experiment paper [--part NAME …] [--scale demo|smoke] [--out DIR] [--report DIR]`` (the rest of the paper);
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
    _register_paper(esub)
    c = esub.add_parser(
        "classifier",
        help="pretrain the demo's VGG16-pattern classifier (the file fcnseg ships; same bytes on the same torch "
        "build and CPU type)",
    )
    c.add_argument("--out", default="shapes-vgg16-w1_16.safetensors", help="where to write it")
    c.set_defaults(func=run_classifier)


def _register_paper(esub: argparse._SubParsersAction) -> None:
    from ...experiments.paper.recipe import SCALES
    from ...experiments.paper.run import PART_NAMES

    p = esub.add_parser(
        "paper",
        help="the rest of the paper: upper bounds, the reference solver, dilation vs skips, loss sampling, "
        "upsampling, cues (~40 min on a 2-core CPU); verdicts computed into RESULTS.md",
    )
    p.add_argument("--part", nargs="+", choices=PART_NAMES, default=list(PART_NAMES), metavar="PART",
                   help=f"the parts to run (default: all): {', '.join(PART_NAMES)}")  # fmt: skip
    p.add_argument("--scale", default="demo", choices=list(SCALES), help="demo: the full set; smoke: every part in "
                   "about a minute (CI)")  # fmt: skip
    p.add_argument("--out", default="runs/paper", help="run folder (runs, paper.json); runs already there are reused")
    add_device_arg(p, default="cpu")
    p.add_argument("--report", default="docs", help="where RESULTS.md and results/ go ('-' for none)")
    p.set_defaults(func=run_paper_cmd)


def run_paper_cmd(args: argparse.Namespace) -> int:
    import shlex
    import sys

    from ...experiments.paper.run import run_paper
    from ._common import device_of

    command = "fcnseg " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else "fcnseg experiment paper"
    result = run_paper(args.out, parts=args.part, scale=args.scale, device=str(device_of(args)),
                       report=None if args.report == "-" else args.report, command=command)  # fmt: skip
    n = sum(len(result[p]["verdicts"]) for p in args.part)
    ok = sum(v["reproduces"] for p in args.part for v in result[p]["verdicts"])
    print(f"{ok} of {n} claims reproduce; read {args.report}/RESULTS.md" if args.report != "-" else f"{ok} of {n}")
    return 0


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
