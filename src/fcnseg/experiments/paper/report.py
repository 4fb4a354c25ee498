"""The paper experiment's report: a section of ``RESULTS.md`` (between markers, so the miniature experiment's
report and this one share the file), ``results/paper.json`` and the Fig. 5-style curves.

Every verdict is the one the run computed (``parts.py``); this module only prints them beside the numbers.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from ...io import atomic_write
from ..results_md import splice
from ..seeds import pts, pts_sd, verdict_line
from .recipe import PAPER_NUMBERS
from .scoring import capped

__all__ = ["paper_markdown", "write_report"]


def write_report(result: dict[str, Any], numbers: Path, report: Path, run_dir: Path) -> None:
    """``report/RESULTS.md``'s paper section, ``report/results/paper.json`` and ``report/results/paper-*.png``."""
    res = report / "results"
    res.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(numbers, res / "paper.json")
    figures = []
    if "loss_sampling" in result:
        _curves(
            result["loss_sampling"]["runs"],
            ("whole", "sample_50", "sample_25"),
            res / "paper-fig5.png",
            "Fig. 5 in miniature: whole images vs loss sampling (FCN-32s)",
        )
        figures.append("![Fig. 5 in miniature](results/paper-fig5.png)")
    if "reference_sgd" in result:
        r = result["reference_sgd"]
        runs = {f"x{k}": v for k, v in r["sweep"].items()} | {k: v for k, v in r["runs"].items() if k != "ref32"}
        _curves(runs, tuple(runs), res / "paper-reference.png", "The reference solver: FCN-32s rate sweep, staged nets")
        figures.append("![reference solver curves](results/paper-reference.png)")
    path = report / "RESULTS.md"
    old = path.read_text() if path.is_file() else ""
    with atomic_write(path, "w") as f:
        f.write(splice(old, paper_markdown(result, figures)))


def _curves(runs: dict[str, Any], keys: tuple[str, ...], path: Path, title: str) -> None:
    from ...viz import figure

    fig = figure((10, 3.8))
    by_step, by_time = fig.subplots(1, 2)
    for key in keys:
        first = runs[key]["per_seed"][0]  # one seed's curve per run: the seeds' steps differ (each its plateau)
        curve = first["curve"]
        if curve:
            by_step.plot(
                [c["step"] for c in curve],
                [c["mean_iu"] for c in curve],
                marker="o",
                ms=3,
                label=f"{runs[key]['label']} (seed {first['seed']})",
            )
            by_time.plot([c["train_s"] for c in curve], [c["mean_iu"] for c in curve], marker="o", ms=3)
    by_step.set(xlabel="step", ylabel="validation mean IU", title=title)
    by_time.set(xlabel="training seconds (wall time, evaluation left out)", ylabel="validation mean IU")
    for ax in (by_step, by_time):
        ax.grid(alpha=0.3)
    by_step.legend(fontsize=7)
    fig.tight_layout()
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)


def paper_markdown(result: dict[str, Any], figures: list[str]) -> str:
    """The section's text: setup, one table per part beside the paper's numbers, and the computed verdicts."""
    meta = result.get("meta", {})
    lines = [
        "# The rest of the paper, runnable",
        "",
        f"Produced on {meta.get('machine', '?')}, device `{meta.get('device', '?')}`, {_produced(meta, result)}. "
        "The numbers are in `docs/results/paper.json` (top-level keys = the parts); every verdict below is "
        "computed from them by `src/fcnseg/experiments/paper/parts.py`.",
        "",
        *_history(meta),
        *_setup(meta, result),
        "",
    ]
    for part in _PARTS:
        lines += [f"## {_TITLES[part]}", ""]
        if part not in result:
            lines += ["Not run yet (`fcnseg experiment paper --part " + part + "`).", ""]
            continue
        lines += [*_TABLES[part](result[part]), ""]
        lines += [verdict_line(v) for v in result[part]["verdicts"]] + [""]
    return "\n".join(lines + figures) + "\n"


def _setup(meta: dict[str, Any], result: dict[str, Any]) -> list[str]:
    """What was trained and how, and whether every run reached its plateau before its step cap."""
    rec = meta.get("recipe", {})
    seg, seeds = rec.get("seg", {}), meta.get("seeds", rec.get("seeds", []))
    seeded = _trainings(result)
    hit = sorted({f"{label} (seed {rec['seed']})" for label, rec in seeded.values() if capped(rec)})
    lost = sorted({f"{label} (seed {rec['seed']})" for label, rec in seeded.values() if rec.get("end") == "diverged"})
    steps = [rec["steps"] for _, rec in seeded.values()]
    return [
        f"Setup: the demo's shipped VGG16-pattern classifier ({seg.get('width', '?')}× VGG16's channels) "
        f"convolutionalized and fine-tuned on {seg.get('seg_size', '?')}-px synthetic scenes ({seg.get('seg_images')} "
        f"training scenes); the *modern* recipe is the demo's (AdamW {seg.get('seg_lr', '?')}, poly over the step "
        f"cap, batch {seg.get('seg_batch', '?')}, one stage from the classifier unless said). **Every run is "
        f"trained to its plateau**: validation mean IU on {seg.get('val_images')} scenes every "
        f"{rec.get('eval_every')} steps, stopped when {rec.get('patience')} evaluations in a row gain less than "
        f"{rec.get('min_delta')} (`train.early_stop`)"
        + (f", not before step {rec['min_steps']}" if rec.get("min_steps") else "")
        + f", capped at {rec.get('cap')} steps "
        f"({rec.get('ref_cap')} for the batch-1 reference solver); scored with its best validation checkpoint on "
        f"the same {seg.get('test_images', '?')} held-out scenes (split `test`). **Each run is repeated with "
        f"{len(seeds)} seeds** ({', '.join(map(str, seeds))}: image order and augmentation); numbers are mean ± "
        "standard deviation over them, and a verdict is *reproduces* or *does not reproduce* only when every seed "
        "agrees, else *inconclusive at this scale*.",
        "",
        f"Scale: {len(seeded)} trainings (runs × seeds, each counted once) stopped after "
        f"{min(steps, default=0):.0f}–{max(steps, default=0):.0f} steps; "
        + (
            "every one reached its plateau before its cap, so the numbers are converged values at this "
            "scale, not snapshots of a fixed budget."
            if not hit and not lost
            else f"all but {len(hit) + len(lost)} reached their plateau before the cap"
            + (
                f"; **stopped at the cap** (not shown to have converged; its plateau rule may have fired on the "
                f"cap's own evaluation): {', '.join(hit)}"
                if hit
                else ""
            )
            + (f"; **diverged** (loss NaN; scored with its best checkpoint before): {', '.join(lost)}" if lost else "")
            + "."
        ),
    ]


def _trainings(result: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Every run × seed of the parts, once (parts share runs): its folder → (its run's label, its record)."""
    runs = [r for part in result.values() if isinstance(part, dict) for r in _all_runs(part)]
    return {rec["dir"]: (r["label"], rec) for r in runs for rec in r.get("per_seed", [])}


def _all_runs(part: dict[str, Any]) -> list[dict[str, Any]]:
    runs = list(part.get("runs", {}).values()) + list(part.get("sweep", {}).values())
    return [r for r in runs if isinstance(r, dict) and "steps" in r and isinstance(r["steps"], dict)]


def _produced(meta: dict[str, Any], result: dict[str, Any]) -> str:
    """By which command, and the time it took: wall time summed over the commands that wrote the numbers (a set
    trained in pieces), training time summed over the runs (each run × seed once)."""
    history = meta.get("history", [])
    if len(history) <= 1:
        return "by " + "".join(_command(h) for h in history)
    wall = sum(h["wall_s"] for h in history) / 3600
    seen = _trainings(result)
    train = sum(rec.get("train_s") or 0.0 for _, rec in seen.values()) / 3600
    return (
        f"by `{history[-1]['command'] or 'fcnseg experiment paper'}`, run {len(history)} times into the same folder "
        f"(the set trains in resumable pieces; each command below): **{wall:.1f} h of wall time** as the commands "
        "recorded it (one stopped part way counts up to its last finished part), "
        f"{len(seen)} runs × seeds, {train:.1f} h of training time summed over them"
    )


def _history(meta: dict[str, Any]) -> list[str]:
    history = meta.get("history", [])
    if len(history) <= 1:
        return []
    items = [f"{i}. {_command(h)}" for i, h in enumerate(history, 1)]
    return ["<details><summary>The commands, in order</summary>", "", *items, "", "</details>", ""]


def _command(h: dict[str, Any]) -> str:
    runs = "" if h.get("runs_trained") is None else f", {h['runs_trained']} runs trained, {h['runs_reused']} reused"
    command = h["command"] or "fcnseg experiment paper"
    return f"`{command}` (**{h['wall_s'] / 60:.1f} min**: {', '.join(h['parts'])}{runs})"


def _bounds(p: dict[str, Any]) -> list[str]:
    paper = PAPER_NUMBERS["upper_bounds"]
    assert isinstance(paper, dict)
    return [
        f"Method: {p['method']}; {p['images']} held-out scenes of {p['size']} px.",
        "",
        "| stride | 32 | 16 | 8 |",
        "|---|---:|---:|---:|",
        "| mean IU bound, synthetic | " + " | ".join(pts(p["mean_iu"][s]) for s in ("32", "16", "8")) + " |",
        "| paper (VOC 2011 val) | " + " | ".join(str(paper[s]) for s in ("32", "16", "8")) + " |",
    ]


def _paper_text(paper: object) -> str:
    """The paper's numbers for a part: its words, or mean IU per net with the source."""
    if not isinstance(paper, dict):
        return str(paper)
    names = {"fcn32s": "FCN-32s", "fcn16s": "FCN-16s", "fcn8s": "FCN-8s", "fcn8s_atonce": "FCN-8s at-once"}
    nets = ", ".join(f"{names.get(k, k)} {v}" for k, v in paper.items() if k != "source")
    return f"{nets} mean IU ({paper['source']})" if "source" in paper else nets


def _steps(r: dict[str, Any]) -> str:
    s = r["steps"]
    cap = f" (cap {r['cap']} hit: {r['capped']} seed(s))" if r.get("capped") else ""
    cap += f" (diverged: {r['diverged']} seed(s), at the step it did)" if r.get("diverged") else ""
    return (f"{s['mean']:.0f} ± {s['sd']:.0f}" if len(s["values"]) > 1 else f"{s['mean']:.0f}") + cap


def _dilation(p: dict[str, Any]) -> list[str]:
    rows = [
        "| net | output stride | GFLOP / image | forward ms | steps to plateau | mean IU | boundary mean IU |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in p["runs"].values():
        rows.append(
            f"| {r['label']} | {r['output_stride']} | {r['gflop']:.3f} | {1e3 * r['forward_s']:.1f} | "
            f"{_steps(r)} | {pts_sd(r['mean_iu'])} | {pts_sd(r['boundary_mean_iu'])} |"
        )
    return [f"Paper: {_paper_text(p['paper'])}.", "", *rows]


def _runs_table(p: dict[str, Any]) -> list[str]:
    rows = [
        "| run | steps to plateau | batch | training s to best | mean IU | boundary mean IU |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in p["runs"].values():
        t = r["train_s_to_best"]
        rows.append(
            f"| {r['label']} | {_steps(r)} | {r['batch']} | {_secs_sd(t)} | {pts_sd(r['mean_iu'])} | "
            f"{pts_sd(r['boundary_mean_iu'])} |"
        )
    return [f"Paper: {_paper_text(p['paper'])}.", "", *rows]


def _secs_sd(t: dict[str, Any]) -> str:
    if t.get("mean") is None:
        return "n/a"
    return f"{t['mean']:.0f}" + (f" ± {t['sd']:.0f}" if len(t["values"]) > 1 else "")


def _cues(p: dict[str, Any]) -> list[str]:
    paper = p["paper"]
    rows = [
        f"Net: {p['net']}; masked pixels set to the preprocessing's mean colour (`data.mask_cue`). The paper's "
        "column is PAMI's FCN-32s on PASCAL (its Table 8 reports no FCN-8s): compare the pattern between rows, "
        "not the values across columns.",
        "",
        "| row (PAMI) | trained on | tested with masked | foreground mean IU | paper (FCN-32s) |",
        "|---|---|---|---:|---:|",
    ]
    for name, r in p["rows"].items():
        rows.append(f"| {name} | {r['train']} | {r['test_mask']} | {pts_sd(r['fg_mean_iu'])} | {paper[name]} |")
    return rows


def _reference(p: dict[str, Any]) -> list[str]:
    pr = p["probe"]
    rows = [
        f"Rule: {p['rule']}. The sweep multiplies it on FCN-32s; the staged nets and at-once use the best "
        f"multiplier (× {p['chosen_multiplier']}, by mean over seeds), keeping the reference's ratios between "
        "nets.",
        "",
        f"First step, measured on one scene ({pr['pixels']} px): summed loss {pr['summed_loss']:.0f}, gradient "
        f"norm score_fr {pr['grad_norm_score_fr']:.3g}, conv1_1 {pr['grad_norm_conv1_1']:.3g} (the zero score "
        f"layer passes no gradient back on the first step); fc7 RMS {pr['fc7_rms']:.3g}; mean |Δlogit| of "
        "one steady-state momentum step: "
        + ", ".join(f"× {m} (lr {v['lr']:.2g}) {v['mean_abs_logit_change']:.2g}" for m, v in pr["sgd"].items())
        + f"; one AdamW step at {pr['adamw']['lr']:g}: {pr['adamw']['mean_abs_logit_change']:.2g}.",
        "",
    ]
    sweep = {f"FCN-32s, rule × {k}": v for k, v in p["sweep"].items()}
    staged = {k: v for k, v in p["runs"].items() if k != "ref32"}
    return rows + _runs_table({"paper": p["paper"], "runs": {**sweep, **staged}})


_PARTS = ("upper_bounds", "reference_sgd", "dilation_vs_skips", "loss_sampling", "upsampling", "cues")
_TITLES = {
    "upper_bounds": "Upper bounds of coarse output (Appendix A)",
    "reference_sgd": "The reference solver",
    "dilation_vs_skips": "Shift-and-stitch (dilation) vs skips (§3.2)",
    "loss_sampling": "Loss sampling, class balancing, jitter (§4.3, Fig. 5)",
    "upsampling": "Fixed vs learned upsampling",
    "cues": "Foreground, background and shape cues (PAMI Table 8)",
}
_TABLES = {
    "upper_bounds": _bounds,
    "reference_sgd": _reference,
    "dilation_vs_skips": _dilation,
    "loss_sampling": _runs_table,
    "upsampling": _runs_table,
    "cues": _cues,
}
