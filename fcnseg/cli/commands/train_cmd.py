"""``fcnseg train CONFIG.yaml [--out RUN_DIR] [--set key=value ...] [--resume]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from ...config import load_config
from ...engine.trainer import fit


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train from a YAML config (works under torchrun for DDP)")
    p.add_argument("config", nargs="?", help="YAML config (configs/*.yaml); omitted with --resume")
    p.add_argument("--out", help="run folder (default runs/<config name>)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="overrides, e.g. train.lr=1e-4")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def load_classes(run_dir: Path) -> list[str]:
    from ...engine.checkpoint import read_info

    path = run_dir / "checkpoints" / "last.safetensors"
    return read_info(path).classes if path.is_file() else []


def run(args: argparse.Namespace) -> int:
    if args.resume:
        run_dir = Path(args.resume)
        cfg = load_config(run_dir / "config.yaml", args.set)
    else:
        if not args.config:
            from ...errors import ConfigError

            raise ConfigError("give a config file, or --resume RUN_DIR")
        cfg = load_config(args.config, args.set)
        run_dir = Path(args.out) if args.out else Path("runs") / Path(args.config).stem
    metrics = fit(cfg, run_dir, resume=bool(args.resume), progress=not args.quiet)
    from .eval_cmd import metrics_table

    results = {"": metrics} if "mean_iu" in metrics else metrics
    classes = load_classes(run_dir)
    for head, m in results.items():
        if head:
            print(f"[{head}]")
        print(metrics_table(m, classes if head in ("", "sem") else []))
    print(f"run folder: {run_dir}")
    return 0
