"""``fcnseg experiment miniature [--out DIR] [--device cpu|cuda] [--scale small|paper] [--report DIR]``;
``fcnseg experiment paper [--part NAME …] [--scale demo|smoke] [--out DIR] [--report DIR]`` (the rest of the paper);
``fcnseg experiment classifier [--out FILE]`` (the demo's shipped classifier)."""

from __future__ import annotations

import argparse

from . import COMMANDS
from ._common import COUNT, NON_NEGATIVE, add_device_arg, add_overwrite_arg, experiment_folder


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("experiment", help=COMMANDS["experiment"][1])
    esub = p.add_subparsers(dest="experiment", required=True, metavar="EXPERIMENT")
    m = esub.add_parser(
        "miniature",
        help="pretrain a VGG16-pattern classifier, convolutionalize, fine-tune FCN-32s-fixed/32s/16s/8s, "
        "at-once and from scratch; evaluate on held-out scenes; write RESULTS.md",
    )
    m.add_argument(
        "--out",
        default="runs/miniature",
        help="run folder (checkpoints, logs); at convergence the paper experiment's --out too (Table 2 reuses its "
        "FCN-32s runs)",
    )
    add_device_arg(m, default="cpu")
    m.add_argument(
        "--scale",
        default="converged",
        choices=["converged", "converged-smoke", "smoke", "small", "paper"],
        help="converged (default): the demo's classifier, every net trained to its plateau, 3 seeds; "
        "small: an own classifier, 1500 steps per stage (~30 min on a 2-core CPU); paper: VGG16 widths, "
        "500-px scenes (a GPU); smoke, converged-smoke: seconds (CI)",
    )
    m.add_argument(
        "--seeds",
        type=NON_NEGATIVE,
        nargs="+",
        default=None,
        metavar="SEED",
        help="with converged: training seeds (default 0 1 2)",
    )
    m.add_argument("--jobs", type=COUNT, default=1, help="with converged: runs trained side by side (default 1)")
    m.add_argument("--report", default="docs", help="where RESULTS.md and results/ go ('-' for none)")
    add_overwrite_arg(m, "an --out folder holding files the experiment did not write")
    m.set_defaults(func=run)
    _register_paper(esub)
    c = esub.add_parser(
        "classifier",
        help="pretrain the demo's VGG16-pattern classifier (the file fcnseg ships; same bytes on the same torch "
        "build and CPU type)",
    )
    c.add_argument("--out", default="shapes-vgg16-w1_16.safetensors", help="where to write it")
    add_overwrite_arg(c, "an existing --out file")
    c.set_defaults(func=run_classifier)


def _register_paper(esub: argparse._SubParsersAction) -> None:
    from ...experiments.paper.recipe import PART_NAMES, SCALES

    p = esub.add_parser(
        "paper",
        help="the rest of the paper: upper bounds, the reference solver, dilation vs skips, loss sampling, "
        "upsampling, cues (~40 min on a 2-core CPU); verdicts computed into RESULTS.md",
    )
    p.add_argument(
        "--part",
        nargs="+",
        choices=PART_NAMES,
        default=list(PART_NAMES),
        metavar="PART",
        help=f"the parts to run (default: all): {', '.join(PART_NAMES)}",
    )
    p.add_argument(
        "--scale",
        default="converged",
        choices=list(SCALES),
        help="converged: every run trained to its "
        "plateau, 3 seeds (about 4 h on 2 cores with --jobs 2); smoke: every part in about a minute (CI)",
    )
    p.add_argument(
        "--seeds",
        type=NON_NEGATIVE,
        nargs="+",
        default=None,
        metavar="SEED",
        help="training seeds (default: the scale's, 0 1 2); a subset trains and reports those only",
    )
    p.add_argument(
        "--jobs",
        type=COUNT,
        default=1,
        help="runs trained side by side, each in its own process with "
        "cores/JOBS threads (default 1; 2 on a 2-core machine trains about twice as many runs per hour)",
    )
    p.add_argument("--out", default="runs/paper", help="run folder (runs, paper.json); runs already there are reused")
    add_device_arg(p, default="cpu")
    p.add_argument("--report", default="docs", help="where RESULTS.md and results/ go ('-' for none)")
    add_overwrite_arg(p, "an --out folder holding files the experiment did not write")
    p.set_defaults(func=run_paper_cmd)


def run_paper_cmd(args: argparse.Namespace) -> int:
    import shlex
    import sys

    from ...experiments.paper.run import run_paper
    from ...experiments.seeds import INCONCLUSIVE, NO, YES
    from ._common import device_of

    command = "fcnseg " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else "fcnseg experiment paper"
    with experiment_folder(args.out, "experiment paper", overwrite=args.overwrite, markers=("paper.json",)):
        result = run_paper(
            args.out,
            parts=args.part,
            scale=args.scale,
            device=str(device_of(args)),
            seeds=tuple(args.seeds or ()),
            jobs=args.jobs,
            report=None if args.report == "-" else args.report,
            command=command,
        )
    verdicts = [v for p in args.part for v in result[p]["verdicts"]]
    counts = {k: sum(v["verdict"] == k for v in verdicts) for k in (YES, NO, INCONCLUSIVE)}
    line = f"{len(verdicts)} claims: " + ", ".join(f"{n} {k}" for k, n in counts.items())
    print(line + (f"; read {args.report}/RESULTS.md" if args.report != "-" else ""))
    return 0


def run_classifier(args: argparse.Namespace) -> int:
    import hashlib

    from ...experiments.demo import pretrain_demo_classifier
    from ...writes import claim_file

    path = pretrain_demo_classifier(claim_file(args.out, overwrite=args.overwrite))
    print(f"wrote {path} (sha256 {hashlib.sha256(path.read_bytes()).hexdigest()})")
    return 0


def run(args: argparse.Namespace) -> int:
    from ...experiments.miniature import run_miniature
    from ...experiments.seeds import pts_sd
    from ._common import device_of

    # at convergence Table 2 trains in the paper experiment's layout and reuses its FCN-32s runs: the same --out
    # serves both (the other scales write a layout of their own, which must not mix with the paper's)
    kin = ("experiment paper",) if args.scale.startswith("converged") else ()
    with experiment_folder(
        args.out, "experiment miniature", overwrite=args.overwrite, markers=("miniature.json",), kin=kin
    ):
        result = run_miniature(
            args.out,
            scale=args.scale,
            device=str(device_of(args)),
            seeds=tuple(args.seeds or ()),
            jobs=args.jobs,
            report=None if args.report == "-" else args.report,
        )
    for net in result["nets"].values():
        miu, b = net["mean_iu"], net["boundary_mean_iu"]
        if isinstance(miu, dict):  # converged: mean ± spread over seeds
            print(f"{net['label']:<22} mean IU {pts_sd(miu):>11}   boundary mean IU {pts_sd(b):>11}")
        else:
            print(f"{net['label']:<22} mean IU {100 * miu:5.1f}   boundary mean IU {100 * b:5.1f}")
    for v in result.get("verdicts", []):
        print(f"{v['verdict']}: {v['claim']}")
    return 0
