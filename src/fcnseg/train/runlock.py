"""One writer per run folder: a second ``fcnseg train`` into a folder in use is refused, not interleaved."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from ..errors import ConfigError
from ..writes import folder_lock

__all__ = ["run_lock"]


@contextlib.contextmanager
def run_lock(run_dir: Path, enabled: bool = True) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``run_dir/.lock`` for the block (released by the OS if the process dies).

    Raises:
        ConfigError: another process holds the folder (its pid is named).
    """
    if not enabled:
        yield
        return
    with folder_lock(run_dir, holder="fcnseg run", error=ConfigError):
        yield
