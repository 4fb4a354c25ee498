"""``fcnseg train CONFIG.yaml [--out RUN_DIR] [--set key=value ...] [--device D] [--resume RUN_DIR | --resume auto]``.

``--resume auto`` (for elastic restarts: the launcher reruns the same command) resumes the run folder when it
holds a checkpoint and starts it otherwise. Under torchrun only rank 0 prints.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from . import COMMANDS
from ._common import add_device_arg


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help=COMMANDS["train"][1])
    p.add_argument("config", nargs="?", help="YAML config (configs/*.yaml); omitted with --resume")
    p.add_argument("--out", help="run folder (default runs/<config name>)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="overrides, e.g. train.lr=1e-4")
    p.add_argument(
        "--resume",
        metavar="RUN_DIR|auto",
        help="continue the run in RUN_DIR from its last checkpoint; 'auto': resume the --out folder when it has "
        "a checkpoint, else start it (elastic restarts)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="start again in a run folder that holds a run already (its outputs are removed first), or write into "
        "a folder holding other files",
    )
    add_device_arg(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ...config import load_config
    from ...errors import ConfigError, printable
    from ...runtime.heads import report
    from ...train.resume import has_checkpoint
    from ...train.trainer import fit
    from ...writes import LEDGER, Ledger, real_path

    overrides = [*args.set, f"train.device={args.device}"] if args.device != "auto" else list(args.set)
    resume, overwrite = bool(args.resume), args.overwrite
    if args.resume and args.resume != "auto":
        run_dir = Path(args.resume)
    else:
        if not args.config:
            raise ConfigError("give a config file, or --resume RUN_DIR")
        run_dir = Path(args.out) if args.out else Path("runs") / Path(args.config).stem
        resume = resume and has_checkpoint(run_dir)
        if args.resume == "auto" and not resume and (run_dir / LEDGER).is_file():
            overwrite = overwrite or Ledger(run_dir).owner == "train"  # its own run, stopped before a checkpoint
        if real_path(args.config) == real_path(run_dir / "config.yaml"):
            raise ConfigError(
                f"{printable(args.config)}: the run folder's own config; --resume {printable(run_dir)} continues "
                "that run, or copy the config elsewhere to start a new one"
            )
    cfg = load_config(run_dir / "config.yaml" if resume else args.config, overrides)
    metrics = fit(cfg, run_dir, resume=resume, progress=not args.quiet, overwrite=overwrite)
    if os.environ.get("RANK", "0") != "0":
        return 0  # only rank 0 prints
    print(report(metrics, {head: scores.get("classes", []) for head, scores in metrics.items()}))
    print(f"run folder: {printable(run_dir)}")
    return 0
