"""Where batch prediction writes: outputs mirror the inputs' relative paths, never collide, never overwrite inputs.

Inputs (files, folders walked recursively, globs) are named by their path relative to the deepest folder
holding all of them, so ``a/x.png`` and ``b/x.png`` become ``OUT/a/x.png`` and ``OUT/b/x.png`` instead of
one file written twice. Two inputs of one stem in one folder (``x.jpg``, ``x.png``) keep their suffix in
the output name (``x_jpg.png``, ``x_png.png``). A plan whose output would replace an input, or whose
``OUT`` lies inside an input folder (the next run would read the masks as photos), is refused. Paths are
compared by their real paths (:mod:`fcnseg.writes`): a symlinked ``--out``, an input reached through a symlink or
a symlink into ``--out`` are seen for what they are. Files in input folders that are not images by their suffix
are listed once (:func:`collect_inputs`' ``ignored``), not skipped in silence.
"""

from __future__ import annotations

import glob
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError, printable
from ..imageio import IMAGE_SUFFIXES
from ..writes import destination, real_path, refuse_overlap

__all__ = [
    "IMAGE_SUFFIXES",
    "Job",
    "collect_inputs",
    "output_files",
    "output_rels",
    "plan_jobs",
    "refuse_overwriting_inputs",
]


@dataclass(frozen=True)
class Job:
    """One input image and the output stem (relative to ``OUT``, POSIX, no suffix) its files are named by."""

    source: Path
    stem: str


def collect_inputs(
    items: Sequence[str | os.PathLike], *, ignored: list[Path] | None = None
) -> tuple[list[Path], list[Path]]:
    """Files, folders (their images, recursively) and globs → (sorted unique image paths, folder arguments).

    ``ignored``: if given, receives the files in those folders that are not images by their suffix.
    """
    found: list[Path] = []
    folders: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            folders.append(path)
            for p in path.rglob("*"):
                if _hidden(p, path) or p.is_dir():
                    continue
                if p.suffix.lower() in IMAGE_SUFFIXES:
                    found.append(p)
                elif ignored is not None:
                    ignored.append(p)
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
    try:  # by real paths: a symlinked --out, or an input folder reached through a symlink, is no way around it
        refuse_overlap(out, folders, folder=True)
    except DataError as e:
        raise DataError(f"{e}; the next run would read the masks as input images") from None
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


def output_rels(job: Job, heads: Sequence[str], *, probs: bool) -> list[str]:
    """:func:`output_files` relative to ``OUT`` (POSIX): the names the folder's ledger records."""
    return [f.as_posix() for f in output_files(job, Path(), heads, probs=probs)]


def refuse_overwriting_inputs(jobs: Sequence[Job], out: Path, heads: Sequence[str], *, probs: bool, grid: int) -> None:
    """Refuse a plan in which an output would replace an input (compared by real paths: a symlink into ``--out``
    counts), or two outputs share a name (``grid``: ``out/grid.png`` beside the mask of an input named ``grid``)."""
    sources = {real_path(j.source): j.source for j in jobs}
    owner: dict[str, str] = {"grid.png": "the grid (--grid)"} if grid else {}
    for job in jobs:
        for rel in output_rels(job, heads, probs=probs):
            dest = destination(out / rel)
            if dest in sources:
                raise DataError(
                    f"{printable(out / rel)}: would overwrite the input image {printable(sources[dest])}; "
                    "choose another --out"
                )
            if rel in owner:
                raise DataError(
                    f"{printable(out / rel)}: would be both {owner[rel]} and an output of {printable(job.source)}; "
                    "choose another --out" + (" or leave out --grid" if rel == "grid.png" else "")
                )
            owner[rel] = f"an output of {printable(job.source)}"
    if grid and destination(out / "grid.png") in sources:
        raise DataError(
            f"{printable(out / 'grid.png')}: would overwrite the input image of that name; choose another --out"
        )


def by_shape(jobs: Sequence[Job]) -> list[Job]:
    """``jobs`` with the images of one size together (a stable sort by the size in each file's header).

    An engine compiled per input shape (OpenVINO keeps the last :data:`~fcnseg.export.openvino.MAX_SHAPES`) then
    compiles each size once: in a folder cycling through 8 sizes, taken in name order, it recompiled for every image
    and the 100-image job ran no faster than PyTorch. A file whose header cannot be read keeps its turn at the
    front; reading it properly reports the problem.
    """
    from PIL import Image

    from ..files import open_regular

    def size(job: Job) -> tuple[int, int]:
        try:
            with open_regular(job.source) as f, Image.open(f) as im:  # the header only; never a FIFO
                return im.size[1], im.size[0]
        except Exception:
            return (0, 0)

    return sorted(jobs, key=size)
