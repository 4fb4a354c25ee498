"""Typed errors for everything a user can get wrong.

Every user-facing problem raises a subclass of :class:`FCNError` whose message names the file, key
or value at fault, what was expected and what was found. The CLI turns an ``FCNError`` into one line
on stderr and exit code 2; any other exception is a bug in fcnseg and keeps its traceback.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "DataWarning",
    "ExportError",
    "FCNError",
    "ModelError",
    "WeightsError",
    "first_line",
    "printable",
]


class FCNError(Exception):
    """Base class of all errors fcnseg raises for bad input.

    ``details``: further lines (one problem each) listed under the message, as a folder with several pairing
    problems reports all of them at once; ``str()`` gives the message and the details, each on its own line.
    """

    def __init__(self, message: str = "", *args: object, details: Sequence[str] = ()) -> None:
        super().__init__(message, *args)
        self.details = tuple(details)

    @property
    def summary(self) -> str:
        """The message without its details."""
        return str(self.args[0]) if self.args else ""

    def __str__(self) -> str:
        return "\n  ".join([self.summary, *self.details]) if self.details else super().__str__()

    def one_line_each(self) -> list[str]:
        """The message and each detail, control characters escaped: a name can never start a line of its own."""
        return [printable(self.summary), *(f"  {printable(d)}" for d in self.details)]


class ConfigError(FCNError, ValueError):
    """A configuration value or model argument is invalid."""


class ModelError(FCNError, ValueError):
    """A model name is unknown or a model cannot be built with the given arguments."""


class DataError(FCNError, ValueError):
    """A dataset file is missing, unreadable or inconsistent."""


class CheckpointError(FCNError, ValueError):
    """A checkpoint or weight file does not match the model it is loaded into."""


class ExportError(FCNError, RuntimeError):
    """An export to another format failed."""


class WeightsError(FCNError, RuntimeError):
    """Pretrained weights could not be fetched, verified or cached (the message says which file, from where, and what
    to do)."""


class DataWarning(UserWarning):
    """Data that loads but is probably not what the user meant (e.g. binary masks whose foreground is 255).

    The CLI prints it as one line, ``fcnseg: warning: …``.
    """


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (its type's name when empty), for one-line errors."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


#: characters that must not reach a terminal or a log line raw: C0 and C1 controls, DEL, line and paragraph
#: separators, and the lone surrogates a file name that is not UTF-8 decodes to
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def printable(text: object) -> str:
    """``text`` with control characters escaped as Python writes them (``\\n``, ``\\x1b``, ``\\udcff``).

    A file name holding a newline cannot then split a log line into one that reads like another message.
    """
    return _UNPRINTABLE.sub(lambda m: repr(m.group())[1:-1], str(text))
