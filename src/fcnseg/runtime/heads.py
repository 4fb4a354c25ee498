"""Heads have one shape and one owner: evaluation returns ``{head: scores}`` (``""`` for a single-head net);
this module names each head's classes and prints, saves and pictures those scores for train, eval and the
experiments alike.

A single-head net's ``metrics.json`` is its scores (the reference's four numbers at the top level); a
multi-head net's is ``{head: scores}``. Confusion pictures are ``confusion.png`` or ``confusion_HEAD.png``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..io import write_json
from ..metrics import named

__all__ = ["FOUR", "head_classes", "main_scores", "metrics_table", "public", "report", "write_metrics"]

#: the reference's four numbers, in its order
FOUR = ("pixel_accuracy", "mean_accuracy", "mean_iu", "fw_iu")


def head_classes(
    heads: Iterable[str], dataset: Any = None, classes: Sequence[str] | None = None
) -> dict[str, list[str]]:
    """Class names for each of ``heads``.

    ``classes`` (a checkpoint's, which are its first head's) name the first head; every other head (or all,
    without ``classes``) takes the dataset's ``head_classes``; a head neither knows is named by its indices.
    """
    per_head = dict(getattr(dataset, "head_classes", None) or {})
    names = {}
    for i, head in enumerate(heads):
        names[head] = list(classes) if classes is not None and i == 0 else list(per_head.get(head, []))
    return names


def main_scores(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The first head's scores: the ones a run logs and picks its best checkpoint by."""
    return next(iter(metrics.values()))


def metrics_table(metrics: Mapping[str, Any], classes: Sequence[str]) -> str:
    """The four numbers on one line, then IU and accuracy per class (``n/a`` for a class absent from the set)."""
    lines = [
        f"pixel accuracy {metrics['pixel_accuracy']:.4f}   mean accuracy {metrics['mean_accuracy']:.4f}   "
        f"mean IU {metrics['mean_iu']:.4f}   f.w. IU {metrics['fw_iu']:.4f}",
        f"{'class':20s} {'IU':>7s} {'acc':>7s}",
    ]
    for i, (iu, acc) in enumerate(zip(metrics["iu"], metrics["accuracy"], strict=True)):
        name = classes[i] if i < len(classes) else str(i)
        fmt = lambda v: "    n/a" if v != v else f"{v:7.4f}"  # noqa: E731  (NaN: class absent)
        lines.append(f"{name:20s} {fmt(iu)} {fmt(acc)}")
    return "\n".join(lines)


def report(metrics: Mapping[str, Any], names: Mapping[str, Sequence[str]]) -> str:
    """Every head's table (under ``[head]`` when there are several), with a warning for unscorable labels."""
    parts = []
    for head, m in metrics.items():
        if head:
            parts.append(f"[{head}]")
        parts.append(metrics_table(m, names.get(head, [])))
        outside = m.get("unpredictable_labels", {})
        if outside.get("pixels"):
            k = len(m["iu"])
            parts.append(
                f"warning: {outside['pixels']} labelled pixels carry values {outside['values']} that this "
                f"model ({k} classes, 0..{k - 1}) cannot predict; the metrics above leave them out "
                "(a dataset with more classes than the model?)"
            )
    return "\n".join(parts)


def public(metrics: Mapping[str, Any], names: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """What ``metrics.json`` holds: class names beside the per-class numbers, no confusion matrix."""
    out = {
        h: {k: v for k, v in named(dict(m), list(names.get(h, []))).items() if k != "confusion"}
        for h, m in metrics.items()
    }
    return out[""] if list(out) == [""] else out


def write_metrics(out: Path, metrics: Mapping[str, Any], names: Mapping[str, Sequence[str]]) -> Path:
    """``out/metrics.json`` and a confusion picture per head, each labelled with that head's classes."""
    from ..viz import save_confusion

    write_json(out / "metrics.json", public(metrics, names))  # an absent class's IU: null, not a bare NaN
    for head, m in metrics.items():
        save_confusion(
            out / f"confusion{'_' + head if head else ''}.png", np.array(m["confusion"]), list(names.get(head, []))
        )
    return out / "metrics.json"
