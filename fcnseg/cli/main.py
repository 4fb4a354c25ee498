"""``fcnseg`` — command-line entry point. Library errors become one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import sys

from ..errors import FCNError
from .commands import (
    bench_cmd,
    convert_cmd,
    data_cmd,
    demo_cmd,
    eval_cmd,
    experiment_cmd,
    export_cmd,
    models_cmd,
    predict_cmd,
    serve_cmd,
    train_cmd,
)

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fcnseg", description="Fully Convolutional Networks for semantic segmentation."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands = (
        demo_cmd,
        train_cmd,
        eval_cmd,
        predict_cmd,
        export_cmd,
        convert_cmd,
        data_cmd,
        models_cmd,
        serve_cmd,
        bench_cmd,
        experiment_cmd,
    )
    for module in commands:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except FCNError as e:
        print(f"fcnseg {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
