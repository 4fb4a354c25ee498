"""The miniature experiment's run: pretrain, fine-tune every net of the recipe, evaluate on held-out scenes."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ...config import load_config
from ...data import SyntheticShapes
from ...data.transforms import eval_transforms
from ...errors import ConfigError
from ...io import atomic_write
from ...preprocessing import IMAGENET
from ...runtime.checkpoint import load_checkpoint
from ...runtime.evaluate import evaluate, predict_batch
from ...runtime.heads import FOUR, main_scores
from ...train.logging import read_log
from ...train.trainer import fit
from ..pool import machine
from .classifier import pretrain_classifier
from .recipe import NETS, SCALES, Scale, overrides
from .report import write_report

__all__ = ["CONVERGED_SCALES", "evaluate_held_out", "run_miniature", "skip_effect"]

#: ``--scale`` names of Table 2 at convergence → the paper experiment's scale they train at
CONVERGED_SCALES = {"converged": "converged", "converged-smoke": "smoke"}


def evaluate_held_out(model: nn.Module, scale: Scale, device: torch.device, *, mask_cue: str = "none",
                      grid: int = 4) -> tuple[dict[str, Any], list[Any]]:  # fmt: skip
    """The four metrics and boundary mean IU of ``model`` on the held-out scenes (the engine's evaluator), with
    ``mask_cue`` hidden in them (``data.mask_cue``); the predictions for the first ``grid`` scenes (the report's
    grid)."""
    model = model.to(device).eval()
    ds = SyntheticShapes(scale.test_images, scale.seg_size, "test", cache=True,
                         transforms=eval_transforms(IMAGENET, mask_cue=mask_cue))  # fmt: skip
    result = main_scores(evaluate(model, ds, len(ds.classes), device=device, band=scale.band))
    preds = [predict_batch(model, ds[i][0][None].float().to(device))[0].cpu().numpy()
             for i in range(min(grid, len(ds)))]  # fmt: skip
    return result, preds


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

        return run_converged(out, scale=CONVERGED_SCALES[str(scale)], device=device, seeds=tuple(seeds), jobs=jobs,
                             report=report, log=log, name=str(scale))  # fmt: skip
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
    nets: dict[str, Any] = {}
    runs: dict[str, Path] = {}
    for i, (key, (name, init, label)) in enumerate(NETS.items()):
        t = time.perf_counter()
        log(f"[2/3] {label} ({i + 1}/{len(NETS)}): {sc.seg_steps} steps from {init}")
        extra = []
        if init.startswith("classifier"):
            extra.append(f"model.backbone_weights={classifier['path']}")
        if init.endswith("frozen"):
            extra.append("model.freeze=backbone")
        if init in runs:
            extra.append(f"model.init_from={runs[init] / 'checkpoints' / 'last.safetensors'}")
        cfg = load_config(None, [*overrides(sc, device, name), *extra])
        fit(cfg, out / key, progress=False)
        runs[key] = out / key
        nets[key] = {"label": label, "arch": name, "init": init, "train_wall_s": time.perf_counter() - t}
    log(f"[3/3] evaluating on {sc.test_images} held-out scenes")
    grid_preds = {}
    for key in NETS:
        model, _ = load_checkpoint(runs[key] / "checkpoints" / "last.safetensors")
        metrics, preds = evaluate_held_out(model, sc, dev)
        nets[key].update({k: metrics[k] for k in (*FOUR, "boundary_mean_iu")})
        nets[key]["curve"] = [(int(r["step"]), float(r["mean_iu"])) for r in read_log(runs[key] / "log.csv")
                              if r["mean_iu"]]  # fmt: skip
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


def skip_effect(model: nn.Module) -> dict[str, float]:
    """Per skip score layer, mean |weight| times the constant its tap is multiplied by before scoring.

    How strongly each skip can move the output: the at-once net's pool4/pool3 taps are scaled by
    0.01/0.0001, so its score layers need weights 100×/10 000× larger to act as much as FCN-8s's.
    """
    out = {}
    for stride, name in ((16, "score_pool4"), (8, "score_pool3")):
        layer = getattr(model, name, None)
        if isinstance(layer, nn.Conv2d):
            out[name] = float(layer.weight.detach().abs().mean()) * model.skip_scales.get(stride, 1.0)
    return out
