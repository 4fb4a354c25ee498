"""One rank's error stops every rank, with its message, instead of leaving the others in a collective.

When a rank fails (bad data, out of memory, a diverged loss), the other ranks are waiting in an
all-reduce that will never complete: NCCL would hold them until its timeout (10 minutes by default) and
then print its own watchdog message, not the error. :class:`RankGuard` puts the failing rank's one-line
message in the process group's key-value store; a small thread on every rank polls that key and, when it
appears, prints ``stopped: rank N failed: …`` (rank 0 only) and ends the process with exit code 2.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from types import TracebackType
from typing import Any

from ..errors import FCNError

__all__ = ["KEY", "RankFailed", "RankGuard"]

KEY = "fcnseg/failed"


class RankFailed(FCNError, RuntimeError):
    """Another rank of this run failed; its message."""


def _store() -> Any:
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return None
    return dist.distributed_c10d._get_default_store()


class RankGuard:
    """Context manager around a distributed run's work; a no-op for one process.

    Args:
        rank, world: this process's rank and the world size.
        poll_s: how often the watchdog thread looks at the store.
        linger_s: how long a failing rank waits, after publishing its message, before it goes on to exit
            (so the others read the message before they notice the closed connection themselves).
    """

    def __init__(self, rank: int, world: int, *, poll_s: float = 1.0, linger_s: float = 2.0) -> None:
        self.rank, self.world, self.poll_s, self.linger_s = rank, world, poll_s, linger_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.store: Any = None

    def __enter__(self) -> RankGuard:
        if self.world > 1:
            self.store = _store()
        if self.store is not None:
            self._thread = threading.Thread(target=self._watch, name="fcnseg-rank-guard", daemon=True)
            self._thread.start()
        return self

    def _failure(self) -> str | None:
        try:
            if self.store.check([KEY]):
                return self.store.get(KEY).decode("utf-8", "replace")
        except Exception:  # the store went away: the launcher is tearing the run down anyway
            return None
        return None

    def _own(self, message: str) -> bool:
        return message.startswith(f"rank {self.rank} failed:")

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_s):
            message = self._failure()
            if message is not None and not self._own(message):
                if self.rank == 0:
                    print(f"error: stopped: {message}", file=sys.stderr, flush=True)
                sys.stdout.flush()
                os._exit(2)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:  # never let the watchdog touch the store while the group is torn down
            self._thread.join(timeout=self.poll_s + 30.0)
        if self.store is None or error is None or (isinstance(error, SystemExit) and not error.code):
            return
        other = self._failure()
        if other is not None and not self._own(other):
            raise RankFailed(f"stopped: {other}") from None  # this rank only saw the consequence
        text = " ".join(str(error).split()) or type(error).__name__
        try:
            self.store.set(KEY, f"rank {self.rank} failed: {text}"[:2000])
        except Exception:
            return
        time.sleep(self.linger_s)
