"""Numbers over seeds and the verdicts they allow.

Every trained number of the experiments is measured once per training seed (the order images are drawn in,
the augmentations). :func:`spread` summarises them (mean, sample standard deviation, the values);
:func:`seeded_verdict` decides a claim from the seeds' values of the quantity the claim is about:

* the claim holds on a seed when that seed's value lies on the claim's side of the threshold (``side`` ``">"``:
  above it; ``"<"``: below it; ``"|<|"``: its magnitude below it);
* **reproduces** when it holds on every seed, **does not reproduce** when it fails on every seed, and
  **inconclusive at this scale** otherwise: the difference does not exceed the spread between seeds.
* for ``"|<|"`` ("about the same") failing on every seed is not enough: the seeds must also fail on the same
  side (every difference above ``+threshold``, or every one below ``-threshold``). Differences of -5.6, +8.3 and
  +3.0 points exceed a 2-point band on every seed, yet they disagree in sign: that is seed spread, not a difference.
* a seed on which a run of the comparison did not train (``untrained``: it segments no object class)
  decides nothing: the verdict is inconclusive, since the value measures a failed training, not the claim.

With one seed the rule still applies (one seed is "every seed"); the report then says there was one.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

__all__ = [
    "INCONCLUSIVE",
    "NO",
    "UNITS",
    "YES",
    "fixed_verdict",
    "pts",
    "pts_sd",
    "seeded_verdict",
    "spread",
    "verdict_line",
]

YES, NO, INCONCLUSIVE = "reproduces", "does not reproduce", "inconclusive at this scale"
#: how a verdict's per-seed values are shown: unit → (scale, format, suffix)
UNITS = {"points": (100.0, "{:+.1f}", " points"), "s": (1.0, "{:+.0f}", " s")}


def spread(values: Sequence[float | None]) -> dict[str, Any]:
    """``{"mean", "sd", "values"}`` of the finite ``values`` (``sd`` 0 for one value; None where none is finite)."""
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    mean = statistics.fmean(finite) if finite else None
    sd = statistics.stdev(finite) if len(finite) > 1 else (0.0 if finite else None)
    return {"mean": mean, "sd": sd, "values": [None if v is None or not math.isfinite(v) else float(v) for v in values]}


def _holds(value: float, threshold: float, side: str) -> bool:
    if side == ">":
        return value > threshold
    if side == "<":
        return value < threshold
    if side == "|<|":
        return abs(value) < threshold
    raise ValueError(f"side {side!r}: one of >, <, |<|")


def _one_side(values: Sequence[float], side: str) -> bool:
    """For ``"|<|"``: the seeds (all outside the band) lie on one side of it; other sides have one failing side."""
    return side != "|<|" or all(v > 0 for v in values) or all(v < 0 for v in values)


def seeded_verdict(
    claim: str,
    values: Sequence[float],
    threshold: float,
    side: str,
    detail: str,
    *,
    quantity: str,
    unit: str = "points",
    untrained: Sequence[bool] = (),
) -> dict[str, Any]:
    """The verdict on ``claim`` from one value per seed of ``quantity`` compared with ``threshold`` (see the module).

    ``unit``: ``"points"`` (values are fractions, shown × 100) or ``"s"`` (seconds, shown as they are).
    ``untrained``: per seed, whether a run of the comparison did not train there (such a seed decides nothing).
    Returns ``{"claim", "verdict", "reproduces" (True, False or None when inconclusive), "detail", "quantity",
    "threshold", "side", "unit", "per_seed": spread(values), "holds": [per seed], "untrained": [per seed]}``.
    """
    if unit not in UNITS:
        raise ValueError(f"unit {unit!r}: one of {', '.join(UNITS)}")
    holds = [_holds(v, threshold, side) for v in values]
    if not holds or any(untrained):
        verdict = INCONCLUSIVE
    else:
        verdict = YES if all(holds) else NO if not any(holds) and _one_side(values, side) else INCONCLUSIVE
    return {
        "claim": claim,
        "verdict": verdict,
        "reproduces": {YES: True, NO: False}.get(verdict),
        "detail": detail,
        "quantity": quantity,
        "threshold": threshold,
        "side": side,
        "unit": unit,
        "per_seed": spread(values),
        "holds": holds,
        "untrained": [bool(u) for u in untrained],
    }


def fixed_verdict(ok: bool, claim: str, detail: str) -> dict[str, Any]:
    """The verdict on a claim that involves no training (deterministic: no seeds to disagree)."""
    verdict = YES if ok else NO
    return {"claim": claim, "verdict": verdict, "reproduces": bool(ok), "detail": detail}


def pts(v: float | None) -> str:
    """A score in points (``0.4271`` → ``42.7``), ``n/a`` for a missing one."""
    return "n/a" if v is None or v != v else f"{100 * v:.1f}"


def pts_sd(s: dict[str, Any] | None) -> str:
    """A seeded score as ``42.7 ± 1.3`` (points; the sample standard deviation over seeds)."""
    if not s or s.get("mean") is None:
        return "n/a"
    return pts(s["mean"]) if len(s["values"]) < 2 else f"{pts(s['mean'])} ± {100 * s['sd']:.1f}"


def verdict_line(v: dict[str, Any]) -> str:
    """``* **Reproduces**: claim. detail (per seed: …).`` — the per-seed values of the deciding quantity."""
    seeds = ""
    if "per_seed" in v:
        scale, fmt, suffix = UNITS[v.get("unit", "points")]
        vals = ", ".join("n/a" if x is None else fmt.format(scale * x) for x in v["per_seed"]["values"])
        side = {">": "above", "<": "below", "|<|": "within ±"}[v["side"]]
        need = f"needs every seed {side} {scale * v['threshold']:g}"
        if v["side"] == "|<|":
            need += "; every seed outside it on one side to not reproduce"
        seeds = f" Decided by {v['quantity']}, per seed: {vals}{suffix} ({need})"
        if any(v.get("untrained", ())):
            bad = sum(map(bool, v["untrained"]))
            seeds += f"; a run of it did not train on {bad} of {len(v['untrained'])} seeds, so it stays undecided"
    return f"* **{v['verdict'][0].upper() + v['verdict'][1:]}**: {v['claim']}. {v['detail']}.{seeds}"
