"""The reference solver part: the release's SGD recipe (summed loss, batch 1, momentum 0.99, fixed rate) with its
rates scaled by a written rule, a rate sweep on FCN-32s, staged 32s → 16s → 8s and at-once, each to its plateau over
seeds; a probe of its first steps explains what the sweep shows."""

from __future__ import annotations

from typing import Any

from ...data import SyntheticShapes
from ..seeds import pts, pts_sd, seeded_verdict
from .recipe import PAPER_NUMBERS, reference_lr
from .runs import Trainer
from .scoring import one_class, paired, scored, untrained, values

__all__ = ["LEARNS", "background_only", "reference_part"]

# -- the reference solver -----------------------------------------------------------------------------------
LEARNS = 0.15  # held-out mean IU that counts as "learned" (predicting background everywhere scores ≈ 0.09)


def reference_part(tr: Trainer) -> dict[str, Any]:
    from .probe import solver_probe

    ps = tr.ps
    sweep = scored(tr, {f"ref32_x{m}": {"lr_multiplier": m} for m in ps.sweep})
    sweep = {m: sweep[f"ref32_x{m}"] for m in ps.sweep}
    ok = {m: r for m, r in sweep.items() if not r["diverged"]}
    chosen = max(ok, key=lambda m: ok[m]["mean_iu"]["mean"]) if ok else ps.sweep[0]
    base = f"ref32_x{chosen}"
    runs = {"ref32": {**sweep[chosen], "label": f"FCN-32s (rule × {chosen})"}}
    runs |= scored(tr, {"ref16": {"init": base, "lr_multiplier": chosen}, "ref_atonce": {"lr_multiplier": chosen}})
    runs |= scored(tr, {"ref8": {"init": "ref16", "lr_multiplier": chosen}})
    probe = solver_probe(ps, {m: reference_lr("fcn32s_vgg16", ps.seg.seg_size, m) for m in ps.sweep})
    m = {k: r["mean_iu"] for k, r in runs.items()}
    verdicts = [
        seeded_verdict(
            "the reference solver (summed loss, batch 1, momentum 0.99, fixed rate) trains at the "
            "reference's rate scaled by the rule",
            [v - LEARNS for v in values(sweep[1])] if 1 in sweep else [],
            0.0,
            ">",
            _sweep_text(sweep) + f"; 'learned': ≥ {pts(LEARNS)}",
            quantity="rule × 1's mean IU − 0.15",
        ),
        seeded_verdict(
            "with the reference solver, the skips improve on FCN-32s (staged training)",
            paired(lambda a, b, c: min(b - a, c - a), runs["ref32"], runs["ref16"], runs["ref8"]),
            0.0,
            ">",
            f"FCN-32s {pts_sd(m['ref32'])} → FCN-16s {pts_sd(m['ref16'])} → FCN-8s {pts_sd(m['ref8'])} "
            f"mean IU, rule × {chosen}" + _background_note(runs),
            quantity="the smaller of FCN-16s's and FCN-8s's gain over FCN-32s",
            untrained=untrained(runs["ref32"], runs["ref16"], runs["ref8"]),
        ),
        seeded_verdict(
            "all-at-once FCN-8s, trained to its plateau, is about as good as staged (PAMI: 65.4 vs 65.5)",
            paired(lambda a, b: a - b, runs["ref_atonce"], runs["ref8"]),
            0.03,
            "|<|",
            f"at-once {pts_sd(m['ref_atonce'])} vs staged {pts_sd(m['ref8'])} mean IU ('about as good': "
            "within 3 points)",
            quantity="at-once − staged FCN-8s mean IU",
            untrained=untrained(runs["ref_atonce"], runs["ref8"]),
        ),
    ]
    if verdicts[0]["reproduces"] is not True and 1 in sweep:
        verdicts[0]["detail"] += _why_not(probe, sweep)
    if verdicts[2]["reproduces"] is False:
        verdicts[2]["detail"] += _staged_rates(runs)
    return {
        "rule": "lr = reference lr × (500·375 px) / (size² px): an equal step per pixel for the summed loss",
        "sweep": {str(k): v for k, v in sweep.items()},
        "chosen_multiplier": chosen,
        "runs": runs,
        "probe": probe,
        "paper": PAPER_NUMBERS["reference_sgd"],
        "verdicts": verdicts,
    }


def _background_note(runs: dict[str, dict[str, Any]]) -> str:
    flat = [r["label"] for r in runs.values() if background_only(r)]
    return f" ({', '.join(flat)}: background everywhere)" if flat else ""


def _why_not(probe: dict[str, Any], sweep: dict[int, dict[str, Any]]) -> str:
    """Why the rule's rate did not learn, from the probe's first-step sizes and the sweep's outcomes."""
    one = probe["sgd"]["1"]["mean_abs_logit_change"]
    adam = probe["adamw"]["mean_abs_logit_change"]
    learned = [m for m, r in sweep.items() if all((v or 0) >= LEARNS for v in values(r))]  # on every seed
    flat = [m for m, r in sweep.items() if m > 1 and background_only(r)]
    text = (
        f". *Why*: at the rule's rate one steady-state momentum step moves the logits by {one:.2g} on average, "
        f"{adam / max(one, 1e-12):.0f}× less than one AdamW step of the modern recipe ({adam:.2g}; the score "
        f"layer's step scales with the fc7 features it reads, RMS {probe['fc7_rms']:.2g} here), so FCN-32s "
        f"barely leaves the all-background solution its zero score layer starts from before its plateau (mean "
        f"accuracy {pts_sd(sweep[1]['mean_accuracy'])}%, background alone gives "
        f"{pts(1 / len(SyntheticShapes.classes))}%)"
    )
    if learned:
        text += f"; × {', × '.join(map(str, learned))} learns"
    if flat:
        text += (
            f"; × {', × '.join(map(str, flat))} (one step: "
            + ", ".join(f"{probe['sgd'][str(m)]['mean_abs_logit_change']:.2g}" for m in flat)
            + " logits) collapses to background everywhere"
        )
    return text


def _staged_rates(runs: dict[str, dict[str, Any]]) -> str:
    """Why staged differs from at-once: the reference's 100× lower rate per stage."""
    lr = {k: f"{runs[k]['lr']:.2g}" for k in ("ref32", "ref16", "ref8")}
    steps = {k: runs[k]["steps"]["mean"] for k in ("ref16", "ref8", "ref_atonce")}
    return (
        f". *Why*: the staged nets keep the reference's rates, 100× lower per stage (FCN-32s {lr['ref32']}, "
        f"FCN-16s {lr['ref16']}, FCN-8s {lr['ref8']}), set for 100 000-iteration stages; FCN-16s and FCN-8s "
        f"reached their plateaus after {steps['ref16']:.0f} and {steps['ref8']:.0f} steps on average, at-once "
        f"after {steps['ref_atonce']:.0f} at FCN-32s's rate"
    )


def background_only(r: dict[str, Any]) -> bool:
    """The net predicts one class (background) everywhere on every seed: mean accuracy is 1/K."""
    return all(one_class(r))


def _sweep_text(sweep: dict[int, dict[str, Any]]) -> str:
    parts = [
        f"× {m}: "
        + (
            "diverged"
            if r["diverged"] == len(r["seeds"])
            else pts_sd(r["mean_iu"]) + (" (background everywhere)" if background_only(r) else "")
        )
        for m, r in sweep.items()
    ]
    return (
        "FCN-32s held-out mean IU by rate multiplier (rule × m, lr "
        + ", ".join(f"{r['lr']:.2g}" for r in sweep.values())
        + "): "
        + ", ".join(parts)
    )
