"""One writer per run folder: a second ``fcnseg train`` into a folder in use is refused, not interleaved."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from ..errors import ConfigError

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
    try:
        import fcntl
    except ImportError:  # not POSIX: no locking, as before
        yield
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / ".lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            raise ConfigError(
                f"{run_dir}: another fcnseg run (pid {owner}) is writing this folder; wait for it, stop it, "
                "or give another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
