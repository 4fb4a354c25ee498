"""Typed errors for everything a user can get wrong.

Every user-facing problem raises a subclass of :class:`FCNError` whose message names the file, key
or value at fault, what was expected and what was found. The CLI turns an ``FCNError`` into one line
on stderr and exit code 2; any other exception is a bug in fcnseg and keeps its traceback.
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "DataWarning",
    "ExportError",
    "FCNError",
    "ModelError",
    "WeightsError",
]


class FCNError(Exception):
    """Base class of all errors fcnseg raises for bad input."""


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
