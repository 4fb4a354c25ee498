"""The miniature experiment's run: pretrain, fine-tune every net of the recipe, evaluate on held-out scenes."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from ...config import load_config
from ...errors import ConfigError
from ...io import atomic_write
from ...runtime import FOUR, load_checkpoint
from ...train import fit, read_log
from ..heldout import evaluate_held_out, skip_effect
from ..pool import machine
from ..scale import Scale, overrides
from .classifier import pretrain_classifier
from .recipe import NETS, SCALES
from .report import write_report

__all__ = ["CONVERGED_SCALES", "run_miniature"]

#: ``--scale`` names of Table 2 at convergence → the paper experiment's scale they train at
CONVERGED_SCALES = {"converged": "converged", "converged-smoke": "smoke"}


def run_miniature(
    out: str | Path = "runs/miniature",
    *,
    scale: str | Scale = "converged",
    device: str = "cpu",
    report: str | Path | None = "docs",
    log: Any = print,
    seeds: tuple[int, ...] | list[int] = (),
    jobs: int = 1,
) -> dict[str, Any]:
    """Run the whole experiment into ``out``; write the report into ``report`` (None: no report).

    ``scale="converged"`` (or ``"converged-smoke"``) trains every net to its plateau over seeds
    (:func:`~.converged.run_converged`, ``seeds`` and ``jobs`` as there); the other scales pretrain their own
    classifier and give every net the same fixed budget.

    Returns:
        ``{"scale": …, "nets": {key: metrics}, "wall_s": …}``, as in ``miniature.json``.
    """
    if scale in CONVERGED_SCALES:
        from .converged import run_converged

        return run_converged(
            out,
            scale=CONVERGED_SCALES[str(scale)],
            device=device,
            seeds=tuple(seeds),
            jobs=jobs,
            report=report,
            log=log,
            name=str(scale),
        )
    sc = SCALES[scale] if isinstance(scale, str) else scale
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: no CUDA device is available here; use --device cpu")
    t0 = time.perf_counter()
    log(f"[1/3] pretraining the VGG16-pattern classifier ({sc.cls_images} images, {sc.cls_epochs} epochs)")
    classifier = pretrain_classifier(sc, out, dev, log)
    classifier["wall_s"] = time.perf_counter() - t0
    nets, runs = _fine_tune(sc, out, device, classifier["path"], log)
    log(f"[3/3] evaluating on {sc.test_images} held-out scenes")
    grid_preds = {}
    for key in NETS:
        model, _ = load_checkpoint(runs[key] / "checkpoints" / "last.safetensors")
        metrics, preds = evaluate_held_out(model, sc, dev)
        nets[key].update({k: metrics[k] for k in (*FOUR, "boundary_mean_iu")})
        log_rows = read_log(runs[key] / "log.csv")
        nets[key]["curve"] = [(int(r["step"]), float(r["mean_iu"])) for r in log_rows if r["mean_iu"]]
        nets[key]["skip_effect"] = skip_effect(model)
        grid_preds[key] = preds
    result = {
        "scale": asdict(sc) | {"name": scale if isinstance(scale, str) else "custom"},
        "device": device,
        "machine": machine(),
        "classifier": {k: v for k, v in classifier.items() if k != "path"},
        "nets": nets,
        "wall_s": time.perf_counter() - t0,
    }
    with atomic_write(out / "miniature.json", "w") as f:  # the one place the numbers are written
        json.dump(result, f, indent=2)
    if report is not None:
        write_report(result, out / "miniature.json", Path(report), grid_preds, sc)
    log(f"done in {result['wall_s'] / 60:.1f} min")
    return result


def _fine_tune(sc: Scale, out: Path, device: str, classifier: str, log: Any) -> tuple[dict[str, Any], dict[str, Path]]:
    """Every net of :data:`~.recipe.NETS` fine-tuned for ``sc.seg_steps`` from its initialisation, in order."""
    nets: dict[str, Any] = {}
    runs: dict[str, Path] = {}
    for i, (key, (name, init, label)) in enumerate(NETS.items()):
        t = time.perf_counter()
        log(f"[2/3] {label} ({i + 1}/{len(NETS)}): {sc.seg_steps} steps from {init}")
        extra = []
        if init.startswith("classifier"):
            extra.append(f"model.backbone_weights={classifier}")
        if init.endswith("frozen"):
            extra.append("model.freeze=backbone")
        if init in runs:
            extra.append(f"model.init_from={runs[init] / 'checkpoints' / 'last.safetensors'}")
        fit(load_config(None, [*overrides(sc, device, name), *extra]), out / key, progress=False, overwrite=True)
        runs[key] = out / key
        nets[key] = {"label": label, "arch": name, "init": init, "train_wall_s": time.perf_counter() - t}
    return nets, runs
