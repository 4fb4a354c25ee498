"""``fcnseg`` — command-line entry point. Library errors become one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import NoReturn

from ..errors import DataWarning, FCNError
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


class Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (``fcnseg predict: error: argument --alpha: …``), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="fcnseg", description="Fully Convolutional Networks for semantic segmentation.")
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


def _format_warning(message, category, filename, lineno, line=None, _default=warnings.formatwarning) -> str:
    """fcnseg's own warnings as one line; everyone else's as Python formats them."""
    if issubclass(category, DataWarning):
        return f"fcnseg: warning: {message}\n"
    return _default(message, category, filename, lineno, line)


def main(argv: list[str] | None = None) -> int:
    warnings.formatwarning = _format_warning
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except FCNError as e:
        print(f"fcnseg {args.command}: error: {one_line(e)}", file=sys.stderr)
        return 2
    except OSError as e:  # the disk, not fcnseg: full, read-only, a file where a folder should be …
        print(f"fcnseg {args.command}: error: {os_error(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def one_line(e: BaseException) -> str:
    """The message of ``e``; for an error re-raised from a DataLoader worker, the worker's own message.

    PyTorch re-raises a worker's exception with the worker's whole traceback pasted into its message
    ("Caught DataError in DataLoader worker process 0. Original Traceback …"); the last line holds the
    original ``Type: message``.
    """
    text = str(e)
    if "Original Traceback" in text:
        last = [line for line in text.strip().splitlines() if line.strip()][-1]
        text = last.split(": ", 1)[1] if ": " in last and last.split(": ", 1)[0].endswith("Error") else last
    return text


def os_error(e: OSError) -> str:
    """``PATH: reason`` for an OS error (full disk, read-only folder, a file in the way, permissions)."""
    import errno

    name = e.filename if e.filename is not None else ""
    reason = e.strerror or str(e)
    hint = {
        errno.ENOSPC: " (the disk is full)",
        errno.EROFS: " (read-only file system)",
        errno.EACCES: " (no permission)",
        errno.ENOTDIR: " (a file is in the way of a folder)",
        errno.EEXIST: " (a file is in the way)",
    }.get(e.errno or 0, "")
    return f"{name}: {reason}{hint}" if name else f"{reason}{hint}"


if __name__ == "__main__":
    raise SystemExit(main())
