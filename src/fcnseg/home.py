"""Where fcnseg keeps what it makes for itself: ``FCNSEG_HOME`` (default ``~/.cache/fcnseg``).

Exported and compiled engines (``engines/``), downloaded and converted weights (``weights/``), hashes of files
already read (``hashes.json``). Nothing fcnseg caches is written beside a user's files. ``FCNSEG_OFFLINE=1``
forbids network access (cached files only).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["home", "offline", "subdir"]


def home() -> Path:
    """The cache root: ``$FCNSEG_HOME``, else ``$XDG_CACHE_HOME/fcnseg``, else ``~/.cache/fcnseg`` (not created)."""
    given = os.environ.get("FCNSEG_HOME")
    if given:
        return Path(given).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "fcnseg"


def subdir(name: str) -> Path:
    """``home()/name``, created (with its parents) if missing."""
    path = home() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def offline() -> bool:
    """``FCNSEG_OFFLINE`` set to a true value (1, true, yes): no downloads, cached files only."""
    return os.environ.get("FCNSEG_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
