"""Package attributes imported on first use (PEP 562), so that importing a package costs nothing until a name
of it is used: ``fcnseg --help`` and argument errors never import torch."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

__all__ = ["lazy_attributes"]


def lazy_attributes(package: str, names: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package`` whose attribute ``name`` lives in module ``names[name]``
    (relative to the package); each is imported once, on first use, and kept in the package's namespace."""

    def getattr_(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        setattr(importlib.import_module(package), name, value)
        return value

    def dir_() -> list[str]:
        """The public names (``__all__`` and the lazy ones), dunders and loaded submodules: not the helpers the
        package's own code imports (``TYPE_CHECKING``, ``annotations``, ``lazy_attributes``)."""
        module = importlib.import_module(package)
        public = {*names, *getattr(module, "__all__", ())}
        shown = {n for n, v in vars(module).items() if n.startswith("__") or isinstance(v, ModuleType)}
        return sorted(public | shown)

    return getattr_, dir_
