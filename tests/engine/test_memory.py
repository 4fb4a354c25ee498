"""retained_heap: freed memory is reused without page faults inside the block, released after it."""

from __future__ import annotations

import json
import platform
import resource
import subprocess
import sys

import pytest

import fcnseg.engine.trainer as trainer
from fcnseg.engine.memory import retained_heap

from .helpers import tiny

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator only")


PROBE = """
import json, resource, torch
from fcnseg.engine.memory import retained_heap

def faults():  # minor page faults of allocating, filling and freeing 64 MB, steady state
    counts = []  # the first few may land on fresh heap while freed blocks coalesce (seen: up to 5)
    for _ in range(14):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        torch.empty(16 * 2**20).fill_(1.0)
        counts.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    return min(counts[8:])

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()

out = {"default": faults()}
with retained_heap() as active:
    out["active"], out["inside"] = active, faults()
    out["rss_inside"] = rss()
out["rss_after"] = rss()
print(json.dumps(out))
"""


@glibc
def test_freed_memory_is_reused_inside_and_released_after() -> None:
    """In a fresh process (other tests' training leaves the heap in another state)."""
    run = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=120)
    out = json.loads(run.stdout)
    pages = 64 * 2**20 / resource.getpagesize()
    assert out["default"] > 0.9 * pages  # glibc's default: mmap'd afresh and faulted in on every allocation
    assert out["active"] and out["inside"] < 0.01 * pages  # retained: the same pages, reused
    assert out["rss_inside"] - out["rss_after"] > 48 * 2**20  # handed back when the block ends


def test_disabled_is_a_no_op() -> None:
    with retained_heap(False) as active:
        assert not active


def test_fit_retains_the_heap_on_the_cpu_unless_told_not_to(tmp_path, monkeypatch) -> None:
    seen: list[bool] = []
    real = trainer.retained_heap

    def spy(enabled: bool = True):  # type: ignore[no-untyped-def]
        seen.append(enabled)
        return real(enabled)

    monkeypatch.setattr(trainer, "retained_heap", spy)
    trainer.fit(tiny("train.max_iter=1", "train.device=cpu"), tmp_path / "a", progress=False)
    trainer.fit(tiny("train.max_iter=1", "train.device=cpu", "train.retain_memory=false"), tmp_path / "b",
                progress=False)  # fmt: skip
    assert seen == [True, False]
