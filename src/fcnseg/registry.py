"""A named registry of factories: register once, get by name, list by glob.

Registering a name twice raises (as torchvision's ``register_model`` does); an unknown name raises
:class:`~fcnseg.errors.ModelError` listing the valid names and the closest matches.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable
from typing import Generic, TypeVar

from .errors import ModelError

__all__ = ["Registry"]

F = TypeVar("F", bound=Callable)


class Registry(Generic[F]):
    """Maps names to factory functions.

    Args:
        kind: what is registered, used in error messages ("model", "dataset").

    Example:
        >>> reg = Registry("widget")
        >>> @reg.register()
        ... def small():
        ...     return 1
        >>> reg.get("small")()
        1
        >>> reg.list("sm*")
        ['small']
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, F] = {}

    def register(self, name: str | None = None) -> Callable[[F], F]:
        """Decorator registering ``fn`` under ``name`` (default: the function's name)."""

        def wrap(fn: F) -> F:
            key = name or fn.__name__
            if key in self._items:
                raise ValueError(f"{self.kind} {key!r} is already registered")
            self._items[key] = fn
            return fn

        return wrap

    def get(self, name: str) -> F:
        """The factory registered as ``name``; unknown names raise with the valid choices."""
        try:
            return self._items[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._items, n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise ModelError(
                f"Unknown {self.kind} {name!r}. Available: {', '.join(sorted(self._items))}.{hint}"
            ) from None

    def list(self, pattern: str | None = None) -> list[str]:
        """Sorted registered names, filtered by a glob ``pattern`` such as ``"fcn8s*"``."""
        names = sorted(self._items)
        return names if pattern is None else [n for n in names if fnmatch.fnmatch(n, pattern)]

    def __contains__(self, name: object) -> bool:
        return name in self._items
