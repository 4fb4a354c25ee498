"""The weights registry: every :class:`~fcnseg.weights.records.Weights` entry by its full name ``MODEL.TAG``.

:func:`get_weights` finds an entry by full name, or by tag for a given model (``voc`` of ``fcn8s_vgg16``); unknown
names are one-line errors listing what the model has. :func:`register_weights` adds an entry (a lab's own Caffe
model on its own server, or a scaled-down test file).
"""

from __future__ import annotations

import difflib
import fnmatch
import re

from ..errors import ModelError
from .entries import ENTRIES
from .records import Weights

__all__ = ["get_weights", "is_weights_name", "list_weights", "register_weights"]

_TABLE: dict[str, Weights] = {w.name: w for w in ENTRIES}
#: a registry name: ``TAG`` or ``MODEL.TAG`` (no path separator, no file suffix)
_NAME = re.compile(r"[A-Za-z0-9_]+(\.[A-Za-z0-9][A-Za-z0-9_-]*)?|[A-Za-z0-9][A-Za-z0-9_-]*")
#: suffixes of weight files: a value ending so is a file, never a registry name
FILE_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt", ".tar", ".caffemodel", ".onnx")


def register_weights(entry: Weights, *, replace: bool = False) -> Weights:
    """Add ``entry`` to the registry (``replace=True`` overrides an entry of the same full name).

    Raises:
        ValueError: the name is taken and ``replace`` is False.
    """
    if entry.name in _TABLE and not replace:
        raise ValueError(f"weights {entry.name!r} are already registered")
    _TABLE[entry.name] = entry
    return entry


def list_weights(pattern: str | None = None) -> list[Weights]:
    """Every entry (in the table's order), or those whose full name matches the glob ``pattern``."""
    return [w for name, w in _TABLE.items() if pattern is None or fnmatch.fnmatch(name, pattern)]


def is_weights_name(text: str) -> bool:
    """Whether ``text`` is spelled as a registry name (``voc``, ``fcn8s_vgg16.voc``) rather than a file."""
    return bool(_NAME.fullmatch(text)) and not text.lower().endswith(FILE_SUFFIXES)


def get_weights(name: str, model: str | None = None) -> Weights:
    """The entry called ``name``: a full name (``fcn8s_vgg16.voc``), or a tag of ``model`` (``voc``).

    Raises:
        ModelError: no such entry (the message lists the entries of that model, or the closest names), or a full
            name whose model is not ``model``.
    """
    if name in _TABLE:
        entry = _TABLE[name]
        if model is not None and model != entry.model:
            raise ModelError(
                f"weights {name} are for {entry.model}, not {model}; use --model {entry.model} "
                f"(or model.init_from={name} to start {model} from them)"
            )
        return entry
    if model is not None and f"{model}.{name}" in _TABLE:
        return _TABLE[f"{model}.{name}"]
    if model is not None:
        tags = [w.tag for w in _TABLE.values() if w.model == model]
        known = f"{model} has {', '.join(tags)}" if tags else f"no registered weights are for {model}"
        raise ModelError(f"unknown weights {name!r} for {model}: {known} (fcnseg weights lists them all)")
    if "." not in name:
        owners = [w.name for w in _TABLE.values() if w.tag == name]
        hint = f": give the model too, e.g. {', '.join(owners[:4])}" if owners else ""
        raise ModelError(f"weights {name!r} name no model{hint} (fcnseg weights lists them all)")
    close = difflib.get_close_matches(name, _TABLE, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ModelError(f"unknown weights {name!r}{hint} (fcnseg weights lists them all)")
