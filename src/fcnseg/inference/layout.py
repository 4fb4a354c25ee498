"""Where batch prediction writes: outputs mirror the inputs' relative paths, never collide, never overwrite inputs.

Inputs (files, folders walked recursively, globs) are named by their path relative to the deepest folder
holding all of them, so ``a/x.png`` and ``b/x.png`` become ``OUT/a/x.png`` and ``OUT/b/x.png`` instead of
one file written twice. Two inputs of one stem in one folder (``x.jpg``, ``x.png``) keep their suffix in
the output name (``x_jpg.png``, ``x_png.png``). A plan whose output would replace an input, or whose
``OUT`` lies inside an input folder (the next run would read the masks as photos), is refused.
"""

from __future__ import annotations

import glob
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..data.folder import IMAGE_SUFFIXES
from ..errors import DataError

__all__ = ["IMAGE_SUFFIXES", "Job", "collect_inputs", "output_files", "plan_jobs", "refuse_overwriting_inputs"]


@dataclass(frozen=True)
class Job:
    """One input image and the output stem (relative to ``OUT``, POSIX, no suffix) its files are named by."""

    source: Path
    stem: str


def collect_inputs(items: Sequence[str | os.PathLike]) -> tuple[list[Path], list[Path]]:
    """Files, folders (their images, recursively) and globs → (sorted unique image paths, folder arguments)."""
    found: list[Path] = []
    folders: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            folders.append(path)
            found += [p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and not _hidden(p, path)]
        elif any(ch in str(item) for ch in "*?["):
            found += [Path(p) for p in glob.glob(str(item), recursive=True) if not Path(p).is_dir()]
        else:
            found.append(path)
    unique = {os.path.abspath(p): p for p in found}
    return [unique[k] for k in sorted(unique)], folders


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def plan_jobs(inputs: Sequence[Path], folders: Sequence[Path], out: Path) -> list[Job]:
    """Name every input's outputs under ``out``; refuse a plan that would overwrite or re-read an input."""
    absolute = [Path(os.path.abspath(p)) for p in inputs]
    if not absolute:
        return []
    base = Path(os.path.commonpath([str(p.parent) for p in absolute]))
    stems = [p.relative_to(base).with_suffix("").as_posix() for p in absolute]
    by_stem: dict[str, list[int]] = defaultdict(list)
    for i, stem in enumerate(stems):
        by_stem[stem].append(i)
    for indices in by_stem.values():
        if len(indices) > 1:  # x.jpg and x.png in one folder
            for i in indices:
                stems[i] = f"{stems[i]}_{absolute[i].suffix.lstrip('.').lower()}"
    out_abs = Path(os.path.abspath(out))
    for folder in folders:
        root = Path(os.path.abspath(folder))
        if out_abs == root or root in out_abs.parents:
            raise DataError(
                f"--out {out}: inside the input folder {folder}; the next run would read the masks as input "
                "images. Choose a folder outside it"
            )
    return [Job(src, stem) for src, stem in zip(inputs, stems, strict=True)]


def output_files(job: Job, out: Path, heads: Sequence[str], *, probs: bool) -> list[Path]:
    """Every file ``job`` produces: per head a mask, an overlay, and the probabilities if asked."""
    files = []
    for head in heads:
        stem = f"{job.stem}_{head}" if head else job.stem
        files += [out / f"{stem}.png", out / f"{stem}_overlay.jpg"]
        if probs:
            files.append(out / f"{stem}_probs.npy")
    return files


def refuse_overwriting_inputs(jobs: Sequence[Job], out: Path, heads: Sequence[str], *, probs: bool, grid: int) -> None:
    """An output path that is also an input path is refused, naming both (``grid``: ``out/grid.png`` is one)."""
    sources = {os.path.abspath(j.source) for j in jobs}
    if grid and os.path.abspath(out / "grid.png") in sources:
        raise DataError(f"{out / 'grid.png'}: would overwrite the input image of that name; choose another --out")
    for job in jobs:
        for f in output_files(job, out, heads, probs=probs):
            if os.path.abspath(f) in sources:
                raise DataError(f"{f}: would overwrite the input image of that name; choose another --out")
