"""Why the reference solver does or does not learn at a given rate: the size of its first steps, measured.

On one training scene, FCN-32s fresh from the classifier (score layer zero, so every logit starts at 0):

* the summed loss (≈ pixels × ln K at the start) and the gradient norm of the score layer and of ``conv1_1``;
* per learning rate, the logits' mean absolute change after one step of the *steady-state* momentum update
  ``Δw = −lr / (1 − μ) · g`` (what momentum 0.99 multiplies a persistent gradient by: 100×), bias rate ×2;
* the same for one AdamW step of the modern recipe's rate, which moves each weight by about its rate whatever
  the gradient's size.

A logit change of 1e-3 per step needs thousands of steps before any pixel leaves background; that is the
number to read beside the sweep's mean IU.
"""

from __future__ import annotations

from typing import Any

import torch

from ...config import load_config
from ...data import SyntheticShapes, eval_transforms
from ...losses import pixel_loss_terms
from ...preprocessing import IMAGENET
from ...train import build_model, init_backbone
from .recipe import PaperScale

__all__ = ["solver_probe"]


def _fresh(ps: PaperScale) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    sc = ps.seg
    cfg = load_config(
        None,
        [
            "model.name=fcn32s_vgg16",
            f"model.width={sc.width}",
            "model.pad100=false",
            "model.dropout=0",
            f"model.backbone_weights={ps.classifier}",
            "data.name=synthetic",
            "data.preprocessing=imagenet",
        ],
    )
    ds = SyntheticShapes(1, sc.seg_size, "train", transforms=eval_transforms(IMAGENET))
    model = build_model(cfg, ds)
    init_backbone(model, cfg)
    x, y = ds[0]
    return model.eval(), x[None].float(), y[None].long()


def _loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    total, _ = pixel_loss_terms("ce", model(x), y)
    return total


def _logit_change(model: torch.nn.Module, x: torch.Tensor, step: dict[str, torch.Tensor]) -> float:
    with torch.no_grad():
        before = model(x)
        params = dict(model.named_parameters())
        for name, d in step.items():
            params[name].add_(d)
        after = model(x)
        for name, d in step.items():
            params[name].sub_(d)
    return float((after - before).abs().mean())


def solver_probe(ps: PaperScale, lrs: dict[int, float], momentum: float = 0.99) -> dict[str, Any]:
    """The first-step sizes described in the module docstring, for each ``{multiplier: lr}``."""
    torch.manual_seed(0)
    model, x, y = _fresh(ps)
    feats: list[torch.Tensor] = []
    hook = model.fc7.register_forward_hook(lambda mod, inp, out: feats.append(torch.relu(out.detach())))
    loss = _loss(model, x, y)
    hook.remove()
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    norm = lambda prefix: float(torch.cat([g.flatten() for n, g in grads.items() if n.startswith(prefix)]).norm())  # noqa: E731
    out: dict[str, Any] = {
        "pixels": int(y.numel()),
        "summed_loss": float(loss.detach()),
        "grad_norm_score_fr": norm("score_fr"),
        "grad_norm_conv1_1": norm("conv1_1"),
        "fc7_rms": float(feats[0].pow(2).mean().sqrt()),
        "sgd": {},
    }
    for m, lr in lrs.items():
        step = {n: -lr / (1 - momentum) * (2.0 if n.endswith("bias") else 1.0) * g for n, g in grads.items()}
        out["sgd"][str(m)] = {"lr": lr, "mean_abs_logit_change": _logit_change(model, x, step)}
    model.zero_grad(set_to_none=True)
    opt = torch.optim.AdamW(model.parameters(), lr=ps.seg.seg_lr, weight_decay=0.0)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    (_loss(model, x, y) / y.numel()).backward()
    opt.step()
    step = {n: p.detach() - before[n] for n, p in model.named_parameters()}
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(before[n])
    out["adamw"] = {"lr": ps.seg.seg_lr, "mean_abs_logit_change": _logit_change(model, x, step)}
    return out
