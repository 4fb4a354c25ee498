"""The demo's pictures and ``report.md``: what each picture shows, with the run's own numbers in the text."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from ..data import SyntheticShapes
from ..io import atomic_write
from .scale import Scale

__all__ = ["report_markdown", "save_examples", "save_stage_curves", "write_outputs"]


def write_outputs(out: Path, result: dict[str, Any], preds: dict[str, list[Any]], scale: Scale) -> None:
    """``grid.png`` (image | FCN-32s | FCN-16s | FCN-8s | truth), ``predictions/``, ``curves.png``, ``confusion.png``,
    ``report.md``."""
    from ..viz import save_confusion, save_grid

    classes = result["classes"]
    ds = SyntheticShapes(scale.test_images, scale.seg_size, "test")
    keys = list(result["nets"])
    rows = []
    for i in range(min(len(p) for p in preds.values())):
        image, mask, _ = ds.generate(i)
        rows.append([image, *(preds[k][i] for k in keys), mask])
    labels = [result["nets"][k]["label"] for k in keys]
    save_grid(out / "grid.png", rows, titles=["image", *labels, "truth"], classes=classes)
    save_examples(out / "predictions", [(row[0], row[-2]) for row in rows], classes)
    save_stage_curves(out / "curves.png", result)
    final = result["nets"][keys[-1]]
    save_confusion(out / "confusion.png", np.array(final["confusion"]), classes)
    with atomic_write(out / "report.md", "w") as f:
        f.write(report_markdown(result, scale))


def save_examples(folder: Path, examples: list[tuple[np.ndarray, np.ndarray]], classes: list[str]) -> None:
    """The final net's labels of the example scenes as ``predict`` writes them: palette PNG and overlay JPEG."""
    from PIL import Image

    from ..io import write_palette_png
    from ..viz import overlay, palette_for

    pal = palette_for(classes)
    for i, (image, pred) in enumerate(examples):
        write_palette_png(folder / f"example_{i}.png", pred.astype(np.uint8), pal[: len(classes)])
        with atomic_write(folder / f"example_{i}_overlay.jpg") as f:
            Image.fromarray(overlay(image, pred, pal)).save(f, format="JPEG", quality=90)


def save_stage_curves(path: Path, result: dict[str, Any]) -> Path:
    """Training loss and validation mean IU of the stages end to end, each stage in its own colour."""
    from ..viz import figure

    fig = figure((10, 3.6))
    ax = fig.subplots(1, 2)
    offset = 0
    for net in result["nets"].values():
        rows = net["log"]
        loss = [(offset + int(r["step"]), float(r["loss"])) for r in rows if r.get("loss")]
        miu = [(offset + int(r["step"]), float(r["mean_iu"])) for r in rows if r.get("mean_iu")]
        if loss:
            ax[0].plot(*zip(*loss, strict=True), lw=1, label=net["label"])
        if miu:
            ax[1].plot(*zip(*miu, strict=True), marker="o", ms=3, label=net["label"])
        offset = net["steps"]
    ax[0].set(
        title="training loss",
        xlabel="optimizer step (batches of 8 scenes), stages end to end",
        ylabel="cross-entropy (nats), mean per pixel",
    )
    ax[1].set(
        title="validation mean IU",
        xlabel="optimizer step, stages end to end",
        ylabel="mean IU (0 = none, 1 = perfect)",
        ylim=(0, 1),
    )
    for a in ax:
        a.grid(alpha=0.3)
        a.legend(fontsize=8)
    fig.tight_layout()
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=100)
    return path


def report_markdown(result: dict[str, Any], scale: Scale) -> str:
    """``report.md``: the table, the three pictures and what each shows, computed from this run's numbers."""
    nets = list(result["nets"].values())
    last = nets[-1]
    pct = lambda v: "n/a" if v is None else f"{100 * v:.1f}"  # noqa: E731
    per = last["per_class"]
    present = {k: v for k, v in per.items() if v["iu"] is not None and k != "background"}
    worst = min(present, key=lambda k: present[k]["iu"]) if present else "n/a"
    best = max(present, key=lambda k: present[k]["iu"]) if present else "n/a"
    steps = " / ".join(str(n.get("stage_steps", scale.seg_steps)) for n in nets)  # per stage
    lines = [
        "# fcnseg demo: the paper in five minutes",
        "",
        f"A VGG16-pattern classifier ({scale.width:g}× VGG16's channels), pretrained on object-framed synthetic "
        f"shapes (classifier: {result['classifier']}), convolutionalized and fine-tuned as FCN-32s, then "
        f"FCN-16s from it and FCN-8s from that: {steps} AdamW steps (lr {scale.seg_lr:g}) of {scale.seg_batch} "
        f"scenes of {scale.seg_size} px. Every number is measured on {scale.test_images} held-out scenes (split "
        "`test`, never trained "
        f"or selected on). Device `{result['device']}`, {result['wall_s']:.0f} s in all.",
        "",
        "| net | fine-tuning steps | pixel acc. | mean IU | boundary mean IU | time (s) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for n in nets:
        lines.append(
            f"| {n['label']} | {n['steps']} | {pct(n['pixel_accuracy'])} | **{pct(n['mean_iu'])}** | "
            f"{pct(n['boundary_mean_iu'])} | {n['train_s'] + n['eval_s']:.0f} |"
        )
    lines += [
        "",
        f"*Mean IU* is the paper's region metric; *boundary mean IU* scores only the pixels within {scale.band} px "
        "of an object edge, where a coarse output stride hurts most.",
        "",
        "## Examples",
        "",
        "![image | FCN-32s | FCN-16s | FCN-8s | truth](grid.png)",
        "",
        "Each row is a held-out scene, then what each net predicts, then the truth. FCN-32s scores at stride 32 "
        "and upsamples 32×, so it can draw only coarse blobs. The skips from pool4 (FCN-16s) and pool3 (FCN-8s) "
        f"add finer detail: mean IU goes {' → '.join(pct(n['mean_iu']) for n in nets)} and boundary mean IU "
        f"{' → '.join(pct(n['boundary_mean_iu']) for n in nets)}. White pixels are *void* — the 1-px border "
        "around every object in the truth, left out of the loss and the scores, as in PASCAL VOC.",
        "",
        "## Learning curves",
        "",
        "![training loss and validation mean IU](curves.png)",
        "",
        f"Left, the training loss of each stage; right, validation mean IU ({scale.val_images} validation scenes, "
        "a different split from the held-out ones). Each finer net starts from the coarser one's weights. "
        + (
            "Each stage ends above the one before"
            if all(b["mean_iu"] > a["mean_iu"] for a, b in pairwise(nets))
            else "Here a finer stage did *not* end above the one before it"
        )
        + "; part of a later stage's gain is its extra training, which `fcnseg experiment miniature` separates "
        "from the skips' with step-matched FCN-32s controls.",
        "",
        "## Confusion (FCN-8s)",
        "",
        "![confusion matrix](confusion.png)",
        "",
        "Rows are the true class, columns the predicted one; the colour is the share of the true class's pixels, "
        f"the number the pixel count. Best-segmented shape: **{best}** (IU {pct(present.get(best, {}).get('iu'))}); "
        f"hardest: **{worst}** (IU {pct(present.get(worst, {}).get('iu'))})"
        + (
            " — a thin structure, which loses most to the output stride and to background."
            if worst in ("ring", "line")
            else "."
        ),
        "",
        "Per-class IU of the FCN-8s: " + ", ".join(f"{k} {pct(v['iu'])}" for k, v in per.items()) + ".",
        "",
        "`predictions/` holds the final net's labels of these scenes (palette PNG) and overlays. "
        "The final FCN-8s is `checkpoints/best.safetensors` in this folder (`runs/demo/` unless `fcnseg demo --out` "
        "named another). From the folder `fcnseg demo` ran in: `fcnseg predict IMAGES --out preds/` (predict, eval "
        "and serve take this model when none is named), `fcnseg eval --split test` (these held-out scenes again), "
        "or `fcnseg serve` to try it in a browser.",
    ]
    return "\n".join(lines) + "\n"
