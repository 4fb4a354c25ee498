"""A part's runs over seeds: requested together, scored on the held-out scenes, summarised per run
(:func:`aggregate`: each number as ``{"mean", "sd", "values"}``, the per-seed records kept), paired by seed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...runtime import FOUR
from ..seeds import spread
from .runs import Request, Trainer, held_out

__all__ = ["NUMBERS", "aggregate", "capped", "one_class", "paired", "requests_of", "scored", "untrained", "values"]

#: the numbers of a run that are summarised over seeds
NUMBERS = (*FOUR, "boundary_mean_iu", "steps", "train_s", "train_s_to_best")


def aggregate(records: list[dict[str, Any]]) -> dict[str, Any]:
    """One run's seeds in one record: each number as ``{"mean", "sd", "values"}``, the seeds' records kept."""
    first = records[0]
    out: dict[str, Any] = {k: first[k] for k in ("label", "arch", "cap", "batch", "lr")}
    out.update(
        {
            "seeds": [r["seed"] for r in records],
            "capped": sum(capped(r) for r in records),
            "diverged": sum(bool(r["diverged"]) for r in records),
            "per_seed": records,
        }
    )
    out.update({k: spread([r.get(k) for r in records]) for k in NUMBERS})
    return out


def capped(record: dict[str, Any]) -> bool:
    """The run stopped at its step cap — ran out of steps, or its plateau rule fired on the cap's own evaluation
    (then it cannot be told from a run still improving): either way not shown to have converged before it."""
    if record["end"] == "diverged":  # stopped by its NaN, wherever that was
        return False
    return record["end"] == "max_iter" or record.get("steps", 0) >= record.get("cap", float("inf"))


def requests_of(tr: Trainer, key: str, **kw: Any) -> list[Request]:
    """``key``'s requests, one per seed."""
    return [Request(key, s, **kw) for s in tr.seeds]


def scored(tr: Trainer, keys: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Train ``{key: Request keywords}`` for every seed side by side, score each run, aggregate per key."""
    reqs = [r for key, kw in keys.items() for r in requests_of(tr, key, **kw)]
    records = tr.train_many(reqs)
    out = {}
    for key, kw in keys.items():
        name = kw.get("name") or key
        recs = [{**records[(name, s)], **held_out(records[(name, s)]["dir"], tr.ps, tr.device)} for s in tr.seeds]
        out[name] = aggregate(recs)
    return out


def values(run: dict[str, Any], number: str = "mean_iu") -> list[float]:
    """A run's ``number`` per seed, in the seeds' order (so runs of the same seed pair up)."""
    return [r[number] for r in run["per_seed"]]


def paired(f: Callable[..., float], *runs: dict[str, Any], number: str = "mean_iu") -> list[float]:
    return [f(*vals) for vals in zip(*(values(r, number) for r in runs), strict=True)]


def one_class(run: dict[str, Any]) -> list[bool]:
    """Per seed: the net predicts one class everywhere (mean accuracy exactly 1/K: that class's pixels all right,
    every other class's all wrong) — how the report describes a collapsed run (e.g. "background everywhere")."""
    from ...data import SyntheticShapes

    k = len(SyntheticShapes.classes)
    return [v is None or v != v or abs(v - 1 / k) < 1e-6 for v in values(run, "mean_accuracy")]  # None/NaN: no score


#: an object class's held-out IU below this counts as not found
FOUND = 0.05


def untrained(*runs: dict[str, Any]) -> list[bool]:
    """Per seed: some run of a comparison did not leave its start there — it segments no object class (every
    object class's held-out IU under :data:`FOUND`; class 0 is background). Such a seed decides nothing: the
    comparison would measure a training that never took off (class balancing's uniform output; FCN-32s-fixed,
    flat at the all-background start from its first evaluations to the step floor), not the method."""
    return [any(flags) for flags in zip(*(_found_nothing(r) for r in runs), strict=True)]


def _found_nothing(run: dict[str, Any]) -> list[bool]:
    out = []
    for rec in run["per_seed"]:
        objects = [v for v in (rec.get("iu") or [])[1:] if v is not None and v == v]
        out.append(not objects or max(objects) < FOUND)
    return out
