"""The rest of the paper, runnable (``fcnseg experiment paper``): the claims Table 2 does not cover.

Parts (``--part``; all by default; every run trained to its validation plateau, 3 seeds, at ``--scale converged``):

* ``upper_bounds`` — Appendix A: the mean IU of ground truth pushed through a stride-32/16/8 bottleneck;
* ``reference_sgd`` — the release's solver (summed loss, batch 1, SGD momentum 0.99, fixed rate) with its rates
  scaled by a written rule, a rate sweep on FCN-32s, a probe of its first steps, staged 32s → 16s → 8s and at-once;
* ``dilation_vs_skips`` — §3.2: shift-and-stitch as dilation (``model.output_stride``) against skip fusion at the
  same output stride, with FLOPs, time and mean IU;
* ``loss_sampling`` — §4.3 and Fig. 5: whole images against loss sampling (p = 0.5, 0.25, batch raised by 1/p)
  per step and per training second; class balancing; mirroring with 32-px jitter;
* ``upsampling`` — fixed against learned bilinear upsampling for FCN-32s and FCN-8s;
* ``cues`` — PAMI Table 8: foreground, background or both masked at training and/or test time.

Each part writes its numbers and computed verdicts into ``paper.json``; :mod:`.report` prints them beside the
paper's numbers in ``docs/RESULTS.md``. ``--scale smoke`` runs every part in about a minute (CI).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .recipe import PAPER_NUMBERS, PART_NAMES, PARTS, REFERENCE_LR, RUNS, SCALES, PaperScale, Run, reference_lr

if TYPE_CHECKING:
    from .parts import PART_FUNCTIONS, aggregate
    from .report import paper_markdown
    from .run import run_paper

__all__ = [
    "PAPER_NUMBERS",
    "PARTS",
    "PART_FUNCTIONS",
    "PART_NAMES",
    "REFERENCE_LR",
    "RUNS",
    "SCALES",
    "PaperScale",
    "Run",
    "aggregate",
    "paper_markdown",
    "reference_lr",
    "run_paper",
]

_LAZY = {"PART_FUNCTIONS": ".parts", "aggregate": ".parts", "paper_markdown": ".report", "run_paper": ".run"}


def __getattr__(name: str) -> Any:  # the parts import torch: loaded when first used, not when the CLI lists them
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name], __name__), name)
