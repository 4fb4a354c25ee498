"""``fcnseg bench [--models …] [--paths eager fast int8] [--size 500] [--json FILE]``."""

from __future__ import annotations

import argparse
import json

from ...io import atomic_write
from ._common import add_device_arg, device_of


def register(sub: argparse._SubParsersAction) -> None:
    from ...bench import MODELS, PATHS

    p = sub.add_parser(
        "bench", help="inference speed against this machine's GEMM floor per precision (docs/PERFORMANCE.md)"
    )
    p.add_argument("--models", nargs="+", default=list(MODELS), help=f"default: {' '.join(MODELS)}")
    p.add_argument(
        "--paths",
        nargs="+",
        choices=PATHS,
        default=["eager", "bf16", "fast", "int8", "auto"],
        help="eager, channels_last, compiled, bf16 (PyTorch); fast (fp32 onnxruntime), int8 (onnxruntime); "
        "openvino, openvino-bf16; auto (what --engine auto chooses here). Default: eager bf16 fast int8 auto",
    )
    p.add_argument("--size", type=int, default=500, help="square input side in pixels (default 500)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per path, the median reported (default 5)")
    p.add_argument("--json", help="also write the results as JSON")
    add_device_arg(p, default="cpu")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ...bench import run as run_bench
    from ...bench import table

    results = run_bench(tuple(args.models), tuple(args.paths), args.size, args.repeats, device=str(device_of(args)))
    print(table(results))
    if args.json:
        with atomic_write(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0
