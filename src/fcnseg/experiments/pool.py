"""Training several runs side by side, each in its own process.

The experiments' nets are small: one of them keeps one core busy and gains little from a second thread, while
two of them, one thread each, train about twice as many runs per hour on a 2-core machine. :func:`fit_all` runs
:class:`Job`\\ s in ``jobs`` child processes (``spawn``: a fresh interpreter each, no state inherited), with
``cores // jobs`` threads each; ``jobs=1`` trains in this process. A job that stops part way (a killed session)
leaves its last checkpoint, from which the next call resumes it.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import platform
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Job", "fit_all", "fit_job", "machine"]


@dataclass(frozen=True)
class Job:
    """One run: its config as ``--set`` overrides, its folder, and whether to resume it from its last checkpoint."""

    overrides: tuple[str, ...]
    run_dir: str
    resume: bool = False


def fit_job(job: Job, threads: int = 0) -> str | None:
    """Train ``job`` (``threads`` > 0 sets torch's thread count first); the divergence message, or None."""
    import torch

    from ..config import load_config
    from ..train import TrainingDiverged, fit

    if threads > 0:
        torch.set_num_threads(threads)
    log = logging.getLogger("fcnseg")
    level = log.level
    log.setLevel(logging.WARNING)  # a run's own lines (start, each evaluation) would bury the experiment's
    try:
        # the experiment's own run folder: resumed, or (cleared by the experiment) trained again
        fit(
            load_config(None, list(job.overrides)), Path(job.run_dir), resume=job.resume, progress=False, overwrite=True
        )
    except TrainingDiverged as e:
        return str(e).split(":")[0]
    finally:
        log.setLevel(level)
    return None


def fit_all(
    jobs: Sequence[Job], *, workers: int = 1, done: Callable[[Job, str | None], Any] | None = None
) -> dict[str, str | None]:
    """Train every job, ``workers`` at a time; ``done(job, diverged)`` is called as each one finishes.

    Returns ``{run_dir: divergence message or None}``. An error in a job (other than divergence) is raised once
    the jobs already running have finished.
    """
    results: dict[str, str | None] = {}
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            results[job.run_dir] = fit_job(job)
            if done is not None:
                done(job, results[job.run_dir])
        return results
    threads = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(fit_job, job, threads): job for job in jobs}
        for future in as_completed(futures):
            job = futures[future]
            results[job.run_dir] = future.result()
            if done is not None:
                done(job, results[job.run_dir])
    return results


def machine() -> str:
    """This machine as the reports name it: CPU model, torch's threads, torch and Python versions."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return f"{cpu} ({torch.get_num_threads()} threads), torch {torch.__version__}, Python {platform.python_version()}"
