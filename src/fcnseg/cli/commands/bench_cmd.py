"""``fcnseg bench [--models …] [--paths torch onnxruntime-int8 auto …] [--size 500] [--json FILE]``."""

from __future__ import annotations

import argparse

from . import COMMANDS
from ._common import add_device_arg, add_overwrite_arg, device_of


def register(sub: argparse._SubParsersAction) -> None:
    from ...bench import DEFAULT_PATHS, MODELS, PATHS
    from ...inference.engines import ENGINES

    p = sub.add_parser("bench", help=COMMANDS["bench"][1])
    p.add_argument("--models", nargs="+", default=list(MODELS), help=f"default: {' '.join(MODELS)}")
    p.add_argument(
        "--paths",
        nargs="+",
        choices=PATHS,
        default=list(DEFAULT_PATHS),
        metavar="PATH",
        help=f"the inference engines ({', '.join(ENGINES)}), "
        "the PyTorch variants channels_last and compiled, and auto (what --engine auto runs here once "
        f"tuned). Default: {' '.join(DEFAULT_PATHS)}",
    )
    p.add_argument("--size", type=int, default=500, help="square input side in pixels (default 500)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per path, the median reported (default 5)")
    p.add_argument("--json", help="also write the results as JSON")
    add_overwrite_arg(p, "an existing --json file")
    add_device_arg(p, default="cpu")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ...bench import run as run_bench
    from ...bench import table
    from ...writes import claim_file

    if args.json:  # before the minutes of measuring: never over a file of the user's unless told
        claim_file(args.json, overwrite=args.overwrite, option="--json")

    results = run_bench(tuple(args.models), tuple(args.paths), args.size, args.repeats, device=str(device_of(args)))
    print(table(results))
    if args.json:
        from ...io import write_json

        write_json(args.json, results)
    return 0
