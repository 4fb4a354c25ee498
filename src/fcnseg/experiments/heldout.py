"""Scoring a net on the experiments' held-out scenes (split ``test``: never trained on or selected on)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..data import SyntheticShapes, eval_transforms
from ..preprocessing import IMAGENET
from ..runtime import evaluate, main_scores, predict_batch
from .scale import Scale

__all__ = ["evaluate_held_out", "skip_effect"]


def evaluate_held_out(
    model: nn.Module, scale: Scale, device: torch.device, *, mask_cue: str = "none", grid: int = 4
) -> tuple[dict[str, Any], list[Any]]:
    """The four metrics and boundary mean IU of ``model`` on the held-out scenes (the engine's evaluator), with
    ``mask_cue`` hidden in them (``data.mask_cue``); the predictions for the first ``grid`` scenes (the report's
    grid)."""
    model = model.to(device).eval()
    ds = SyntheticShapes(
        scale.test_images, scale.seg_size, "test", cache=True, transforms=eval_transforms(IMAGENET, mask_cue=mask_cue)
    )
    result = main_scores(evaluate(model, ds, len(ds.classes), device=device, band=scale.band))
    preds = [
        predict_batch(model, ds[i][0][None].float().to(device))[0].cpu().numpy() for i in range(min(grid, len(ds)))
    ]
    return result, preds


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
