"""The report of Table 2 at convergence: the miniature's section of ``RESULTS.md`` (mean ± spread over seeds, the
verdicts the run computed), ``results/miniature.json``, the learning curves and a grid of predictions."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from ...data import SyntheticShapes
from ...io import atomic_write
from ..paper.recipe import PaperScale
from ..results_md import paper_section
from ..seeds import pts_sd, verdict_line
from .recipe import PAPER

__all__ = ["converged_markdown", "write_converged_report"]


def write_converged_report(
    result: dict[str, Any], numbers: Path, report: Path, grid: dict[str, list[Any]], ps: PaperScale
) -> None:
    """``RESULTS.md`` (its paper section kept), ``results/miniature.json``, ``results/miniature-curves.png`` and
    ``results/miniature-grid.png`` in ``report``."""
    from ...viz import figure, save_grid

    res = report / "results"
    res.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(numbers, res / "miniature.json")
    fig = figure((7, 4))
    ax = fig.subplots()
    offset = {"fcn16s": "fcn32s", "fcn8s": "fcn16s"}  # staged nets continue from their predecessor's best step
    for key, net in result["nets"].items():
        first = net["per_seed"][0]
        start, prev = 0, offset.get(key)
        while prev:
            start += result["nets"][prev]["per_seed"][0]["best_step"]
            prev = offset.get(prev)
        if first["curve"]:
            ax.plot(
                [start + c["step"] for c in first["curve"]],
                [c["mean_iu"] for c in first["curve"]],
                marker="o",
                ms=2,
                label=f"{net['label']} (seed {first['seed']})",
            )
    ax.set(
        xlabel="fine-tuning step (staged nets continue from their predecessor's best step)",
        ylabel="validation mean IU",
        title="Learning curves to each net's plateau",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_write(res / "miniature-curves.png") as f:
        fig.savefig(f, format="png", dpi=110)
    ds = SyntheticShapes(ps.seg.test_images, ps.seg.seg_size, "test")
    rows = []
    for i in range(min(4, len(grid["fcn32s"]))):
        image, mask = ds[i]
        preds = [grid[k][i] for k in ("fcn32s", "fcn16s", "fcn8s")]
        rows.append([image.permute(1, 2, 0).numpy(), mask.numpy(), *preds])
    save_grid(
        res / "miniature-grid.png",
        rows,
        titles=["image", "truth", "FCN-32s", "FCN-16s", "FCN-8s"],
        classes=list(SyntheticShapes.classes),
    )
    old = (report / "RESULTS.md").read_text() if (report / "RESULTS.md").is_file() else ""
    kept = paper_section(old)
    with atomic_write(report / "RESULTS.md", "w") as f:  # the paper experiment's section stays as it was
        f.write(converged_markdown(result) + ("\n" + kept if kept else ""))


def _training_time(nets: dict[str, Any]) -> str:
    """The training behind the table, whichever command trained it: seconds summed over runs × seeds, each once."""
    seen = {rec["dir"]: rec.get("train_s") or 0.0 for n in nets.values() for rec in n["per_seed"]}
    return f"the {len(seen)} trainings behind the table took {sum(seen.values()) / 3600:.1f} h of training in all"


def converged_markdown(result: dict[str, Any]) -> str:
    """The section's text: how the nets were trained, Table 2 with its spreads, and the computed verdicts."""
    nets, sc, rec = result["nets"], result["scale"], result["recipe"]
    seeds = result["seeds"]
    capped = [n["label"] for n in nets.values() if n["capped"]]
    lines = [
        "# The paper's findings in miniature",
        "",
        f"Produced by `fcnseg experiment miniature --scale {sc['name']}` on {result['machine']}, device "
        f"`{result['device']}`, in **{result['wall_s'] / 60:.1f} minutes** ({result['runs_trained']} runs trained, "
        f"{result['runs_reused']} reused from the same folder; {_training_time(nets)}). Every number below comes "
        "from that run (`docs/results/miniature.json`).",
        "",
        "## Setup",
        "",
        f"* **Pretraining** (the ImageNet step): the demo's shipped VGG16-pattern classifier ({sc['width']:g}× "
        "VGG16's channels, pretrained on object-framed synthetic images, rebuilt bit for bit by `fcnseg experiment "
        "classifier`).",
        f"* **Fine-tuning to convergence**: the demo's recipe (AdamW {sc['seg_lr']:g}, poly over the cap, batch "
        f"{sc['seg_batch']}, {sc['seg_size']}-px scenes, {sc['seg_images']} of them). Every net is trained until its "
        f"validation mean IU ({sc['val_images']} scenes, every {rec['eval_every']} steps) gains less than "
        f"{rec['min_delta']} in {rec['patience']} evaluations in a row"
        + (f" (not before step {rec['min_steps']})" if rec.get("min_steps") else "")
        + f", capped at {rec['cap']} steps; FCN-16s starts "
        "from the FCN-32s's best checkpoint and FCN-8s from the FCN-16s's, as in the paper's staged training; "
        "at-once FCN-8s and the from-scratch FCN-8s start from the classifier and from random weights. "
        + (
            "Every net reached its plateau before the cap."
            if not capped
            else f"**Hit the cap on some seed** (not converged there): {', '.join(capped)}."
        ),
        f"* **Seeds**: each net is trained with {len(seeds)} seeds ({', '.join(map(str, seeds))}: image order and "
        "augmentation); numbers are mean ± standard deviation over them. A verdict is *reproduces* or *does not "
        "reproduce* only when every seed agrees; otherwise *inconclusive at this scale*.",
        f"* **Evaluation**: each net's best validation checkpoint on {sc['test_images']} held-out scenes (split "
        "`test`, never used for training or selection), the paper's four metrics and *boundary mean IU* (pixels "
        f"within {sc['band']} px of an object edge).",
        "",
        "## Results (Table 2, in miniature, at convergence)",
        "",
        "| net | steps to plateau | pixel acc. | mean acc. | mean IU | f.w. IU | boundary mean IU | paper "
        "(seg11valid) |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for key, net in nets.items():
        paper = PAPER.get(key, "")
        ptxt = (
            f"{paper['pixel_accuracy']} / {paper['mean_accuracy']} / **{paper['mean_iu']}** / {paper['fw_iu']}"
            if isinstance(paper, dict)
            else paper
        )
        cells = [pts_sd(net[k]) for k in ("pixel_accuracy", "mean_accuracy", "mean_iu", "fw_iu", "boundary_mean_iu")]
        cells[2] = f"**{cells[2]}**"
        s = net["steps"]
        hit = f" (cap hit on {net['capped']} of {len(s['values'])} seeds)" if net["capped"] else ""
        lines.append(f"| {net['label']} | {s['mean']:.0f} ± {s['sd']:.0f}{hit} | " + " | ".join(cells) + f" | {ptxt} |")
    lines += [
        "",
        "![learning curves](results/miniature-curves.png)",
        "",
        "![image, truth, FCN-32s, FCN-16s, FCN-8s](results/miniature-grid.png)",
        "",
        "## What reproduces",
        "",
        *(verdict_line(v) for v in result["verdicts"]),
    ]
    return "\n".join(lines) + "\n"
