"""Keep freed memory inside the process while training on the CPU (glibc's allocator).

glibc serves every allocation above its mmap threshold (at most 32 MB) with a fresh ``mmap`` and
returns it with ``munmap`` when freed, so the large activations and gradients of a training step are
page-faulted in again, zero-filled, on every step. For FCN-8s VGG16 at 375×500 that is about 700 000
minor page faults (2.8 GB) per step, and a fifth of the step's time (3.27 s → 2.58 s per step with the heap
retained; ``docs/results/retained_heap.txt``). :func:`retained_heap` switches glibc to its heap
for all sizes and stops it trimming the heap's top, for the duration of a ``with`` block, then restores
the limits it found and hands the memory back with ``malloc_trim``. glibc cannot report its limits, so
"found" is what an enclosing block set, else what the process was started with (``MALLOC_MMAP_MAX_``,
``MALLOC_TRIM_THRESHOLD_`` or ``GLIBC_TUNABLES``), else glibc's defaults. The cost is a higher resident
size while inside (+2.7% peak RSS in that measurement): freed blocks stay mapped for the next step.

It is a no-op where the C library is not glibc (macOS, Windows, musl). On CUDA it is not used: there
PyTorch's caching allocator already keeps device memory.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

__all__ = ["retained_heap"]

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc <malloc.h>
_DEFAULT_TRIM_THRESHOLD, _DEFAULT_MMAP_MAX = 128 * 1024, 65536  # glibc's defaults
_NEVER = 2**31 - 1  # mallopt takes an int
#: each limit's environment variable, tunable and glibc default
_ENV = {
    _M_MMAP_MAX: ("MALLOC_MMAP_MAX_", "glibc.malloc.mmap_max", _DEFAULT_MMAP_MAX),
    _M_TRIM_THRESHOLD: ("MALLOC_TRIM_THRESHOLD_", "glibc.malloc.trim_threshold", _DEFAULT_TRIM_THRESHOLD),
}
_set: dict[int, int] = {}  # what the innermost open block set


def _started_with(param: int) -> int:
    """The limit the process started with: its environment variable or tunable, else glibc's default."""
    var, tunable, default = _ENV[param]
    tunables = dict(t.split("=", 1) for t in os.environ.get("GLIBC_TUNABLES", "").split(":") if "=" in t)
    for text in (tunables.get(tunable), os.environ.get(var)):  # glibc lets the tunable win
        if text is not None and text.strip().isdigit():
            return int(text)
    return default


@cache
def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    if not (hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim")):
        return None
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    return libc


@contextmanager
def retained_heap(enabled: bool = True) -> Iterator[bool]:
    """Inside the block, freed memory stays in the process for reuse; yields whether that is in effect.

    Example:
        >>> with retained_heap() as active:
        ...     pass  # a CPU training loop
    """
    libc = _glibc() if enabled else None
    if libc is None:
        yield False
        return
    before = dict(_set)
    found = {param: before.get(param, _started_with(param)) for param in _ENV}
    ok = bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, _NEVER))
    _set.update({_M_MMAP_MAX: 0, _M_TRIM_THRESHOLD: _NEVER})
    try:
        yield ok
    finally:
        for param, value in found.items():
            libc.mallopt(param, value)
        _set.clear()
        _set.update(before)
        libc.malloc_trim(0)
