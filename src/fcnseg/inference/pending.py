"""Exported engines built in the background while the job goes on (``auto``): the user's images never wait on an
export.

Building an exported engine is mostly a child process's work (export, quantization, the probe:
:mod:`fcnseg.inference.build_child`), so a thread of this process can wait on it while the main thread keeps
segmenting on PyTorch. The thread is not a daemon: a job that ends before the build finishes waits for it at
exit, so the cache keeps a whole graph for the next process instead of a half-written one (auto starts a build
only when the images still to come take longer than the build).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Builds"]


@dataclass
class Builds:
    """The engines of one size bucket being built by one background thread."""

    engines: list[str]
    reason: str  # why auto tunes them (the arithmetic), kept for the decision
    runners: dict[str, Any] = field(default_factory=dict)  # engine → its runner, built
    errors: dict[str, BaseException] = field(default_factory=dict)  # engine → why it failed to build
    seconds: dict[str, float] = field(default_factory=dict)  # engine → seconds its build took
    _thread: threading.Thread | None = None

    def start(self, build: Callable[[str], Any]) -> Builds:
        """Build each engine with ``build(name)`` in a new thread, one after the other."""

        def work() -> None:
            for name in self.engines:
                t = time.perf_counter()
                try:
                    self.runners[name] = build(name)
                except Exception as e:  # kept: the decision says why the engine was left out
                    self.errors[name] = e
                self.seconds[name] = round(time.perf_counter() - t, 3)

        self._thread = threading.Thread(target=work, name="fcnseg-engine-build")
        self._thread.start()
        return self

    def done(self) -> bool:
        return self._thread is not None and not self._thread.is_alive()

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
