"""``fcnseg`` — command-line entry point. Library errors become one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import warnings
from typing import Any, NoReturn

from ..errors import DataWarning, FCNError, printable
from .commands import COMMANDS

__all__ = ["build_parser", "full_parser", "main"]


class Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (``fcnseg predict: error: argument --alpha: …``), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s module is imported and registers its arguments (the others are listed)."""
    parser = Parser(prog="fcnseg", description="Fully Convolutional Networks for semantic segmentation.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    module = COMMANDS[command][0] if command in COMMANDS else None
    if module is not None:  # registers every command it holds (list and info share one)
        importlib.import_module(f".commands.{module}", __package__).register(sub)
    for name, (owner, help_text) in COMMANDS.items():
        if owner != module:
            sub.add_parser(name, help=help_text, add_help=False)
    return parser


def full_parser() -> argparse.ArgumentParser:
    """The parser with every command's arguments (for tests and docs: every command module is imported)."""
    parser = Parser(prog="fcnseg", description="Fully Convolutional Networks for semantic segmentation.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in dict.fromkeys(owner for owner, _ in COMMANDS.values()):
        importlib.import_module(f".commands.{module}", __package__).register(sub)
    return parser


def _command(argv: list[str]) -> str | None:
    """The command word of ``argv`` (its first argument not starting with ``-``)."""
    return next((a for a in argv if not a.startswith("-")), None)


def _format_warning(message, category, filename, lineno, line=None, _default=warnings.formatwarning) -> str:
    """fcnseg's own warnings as one line; everyone else's as Python formats them."""
    if issubclass(category, DataWarning):
        return f"fcnseg: warning: {printable(message)}\n"
    return _default(message, category, filename, lineno, line)


class _Stderr(logging.StreamHandler):
    """A handler that writes to whatever ``sys.stderr`` is now (a test's capture, a redirected stream)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def _show_library_messages() -> None:
    """The ``fcnseg`` logger's messages (the library's: engine decisions, fallbacks, notes) on stderr as
    ``fcnseg: …`` lines, INFO and up. A library user's own program decides for itself (warnings only, by default)."""
    log = logging.getLogger("fcnseg")
    if not any(isinstance(h, _Stderr) for h in log.handlers):
        handler = _Stderr()
        handler.setFormatter(_OneLine("fcnseg: %(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.INFO)


class _OneLine(logging.Formatter):
    """A log record as one line: control characters in it (a file name holding a newline) escaped."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return printable(super().formatMessage(record))


def main(argv: list[str] | None = None) -> int:
    warnings.formatwarning = _format_warning
    _show_library_messages()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(_command(argv)).parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except FCNError as e:
        lines = e.one_line_each() if e.details and "Original Traceback" not in str(e) else [printable(one_line(e))]
        print(f"fcnseg {args.command}: error: " + "\n".join(lines), file=sys.stderr)
        return 2
    except OSError as e:  # the disk, not fcnseg: full, read-only, a file where a folder should be …
        print(f"fcnseg {args.command}: error: {printable(os_error(e))}", file=sys.stderr)
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
