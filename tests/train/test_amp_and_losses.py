"""Class imbalance (weights, focal, Dice) and mixed precision that is safe for the reference recipe."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fcnseg.config import load_config
from fcnseg.data import SyntheticShapes
from fcnseg.data.check import check_dataset
from fcnseg.errors import ConfigError
from fcnseg.losses import dice_loss2d, focal_loss2d
from fcnseg.runtime.checkpoint import load_training_state
from fcnseg.train.class_weights import class_weights, frequency_weights
from fcnseg.train.trainer import calibrate_loss_scale, fit
from tests.helpers import tiny


def _losses(run_dir) -> list[float]:
    with (run_dir / "log.csv").open() as f:
        return [float(r["loss"]) for r in csv.DictReader(f) if r["loss"]]


# --- losses ------------------------------------------------------------------------------------------------
def test_focal_with_gamma_zero_is_weighted_cross_entropy() -> None:
    logits, target = torch.randn(2, 4, 6, 5), torch.randint(0, 4, (2, 6, 5))
    target[0, 0] = 255
    w = torch.tensor([0.5, 1.0, 2.0, 3.0])
    expected = F.cross_entropy(logits, target, weight=w, ignore_index=255)
    assert focal_loss2d(logits, target, gamma=0, weight=w).item() == pytest.approx(expected.item(), rel=1e-5)
    summed = F.cross_entropy(logits, target, weight=w, ignore_index=255, reduction="sum")
    assert focal_loss2d(logits, target, gamma=0, weight=w, normalize=False).item() == pytest.approx(summed.item())


def test_focal_loss_discounts_easy_pixels() -> None:
    target = torch.zeros(1, 2, 2, dtype=torch.long)
    easy = torch.tensor([5.0, -5.0]).view(1, 2, 1, 1).expand(1, 2, 2, 2)
    hard = torch.zeros(1, 2, 2, 2)
    ratio_easy = focal_loss2d(easy, target).item() / F.cross_entropy(easy, target).item()
    ratio_hard = focal_loss2d(hard, target).item() / F.cross_entropy(hard, target).item()
    assert ratio_easy < 1e-3 and ratio_hard == pytest.approx(0.25)  # (1 - 0.5)^2


def test_dice_is_zero_for_a_perfect_prediction_and_ignores_void() -> None:
    target = torch.randint(0, 3, (2, 8, 8))
    perfect = F.one_hot(target, 3).permute(0, 3, 1, 2).float() * 50
    assert dice_loss2d(perfect, target).item() < 0.01
    wrong = perfect.roll(1, dims=1)
    assert dice_loss2d(wrong, target).item() > 0.9
    target[:, :4] = 255
    wrong[:, :, :4] = perfect[:, :, :4].roll(2, dims=1)  # errors under void do not count
    half = perfect.clone()
    half[:, :, :4] = wrong[:, :, :4]
    assert dice_loss2d(half, target).item() < 0.01


# --- class weights -------------------------------------------------------------------------------------------
def test_inverse_frequency_weights_come_from_the_check_counts() -> None:
    ds = SyntheticShapes(12, 32, "train")
    freq = check_dataset(ds).frequencies()
    w = class_weights("inverse_frequency", ds, len(ds.classes))
    assert w is not None and w.shape == (9,)
    present = freq > 0
    assert (freq[present] * w[present]).sum() == pytest.approx(1.0)  # mean weight of a labelled pixel is 1
    assert w[0] < 1 < w[present][1:].max()  # background is common, shapes are rare
    assert np.argmax(w) == np.argmin(np.where(present, freq, np.inf))
    assert frequency_weights(np.array([0.5, 0.25, 0.25, 0.0]), "median_frequency").tolist() == [0.5, 1.0, 1.0, 0.0]


def test_bad_class_weights_are_config_errors() -> None:
    ds = SyntheticShapes(2, 32, "train")
    with pytest.raises(ConfigError, match="9 finite non-negative"):
        class_weights([1.0, 2.0], ds, 9)
    with pytest.raises(ConfigError, match="unknown weighting"):
        class_weights("inverse_freq", ds, 9)
    with pytest.raises(ConfigError, match="normalize: true"):
        load_config(None, ["train.loss=ce+dice", "train.normalize=false"])
    with pytest.raises(ConfigError, match=r"train\.loss"):
        load_config(None, ["train.loss=hinge"])


@pytest.mark.parametrize("loss", ["focal", "ce+dice", "focal+dice"])
def test_training_with_weights_and_modern_losses(tmp_path, loss: str) -> None:
    cfg = tiny("train.max_iter=3", "train.eval_every=3", f"train.loss={loss}", "train.class_weights=inverse_frequency")
    metrics = fit(cfg, tmp_path / "run", progress=False)
    weights = json.loads((tmp_path / "run" / "class_weights.json").read_text())
    assert next(iter(weights)) == "background" and len(weights) == 9
    losses = _losses(tmp_path / "run")
    assert all(np.isfinite(losses)) and 0 <= metrics[""]["mean_iu"] <= 1


# --- mixed precision -------------------------------------------------------------------------------------------
REFERENCE = [  # the reference solver: summed loss, tiny learning rate, momentum 0.99
    "model.name=fcn8s_vgg16",
    "model.width=0.0625",
    "model.dropout=0.0",
    "data.preprocessing=caffe_voc",
    "train.normalize=false",
    "train.lr=1e-6",
    "train.momentum=0.99",
    "train.max_iter=4",
    "train.eval_every=4",
    "train.checkpoint_every=4",
]


def test_calibrated_loss_scale_puts_the_largest_gradient_under_fp16_overflow() -> None:
    model = torch.nn.Linear(4, 2)
    x = torch.randn(64, 4) * 100
    for summed, expect_small in ((True, True), (False, False)):

        def loss_fn(summed=summed):
            out = model(x).pow(2)
            return out.sum() * 1000 if summed else out.mean() * 1e-6

        scale = calibrate_loss_scale(model, loss_fn)
        loss_fn().backward()
        peak = max(float(p.grad.abs().max()) for p in model.parameters())
        model.zero_grad()
        assert 65504 / 16 < peak * scale <= 65504 / 8  # a power of two with 8–16× headroom
        assert (scale < 1) is expect_small and math.log2(scale).is_integer()


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_reference_recipe_under_autocast_matches_fp32(tmp_path, dtype: str) -> None:
    fit(tiny(*REFERENCE), tmp_path / "fp32", progress=False)
    fit(tiny(*REFERENCE, "train.amp=true", f"train.amp_dtype={dtype}"), tmp_path / "amp", progress=False)
    ref, amp = _losses(tmp_path / "fp32"), _losses(tmp_path / "amp")
    assert len(amp) == len(ref) and all(np.isfinite(amp))
    np.testing.assert_allclose(amp, ref, rtol=0.03)
    state = load_training_state(tmp_path / "amp" / "checkpoints" / "last")
    if dtype == "float16":  # the measured scale never had to back off: no step was skipped
        assert state["scaler"]["scale"] < 1.0 and state["scaler"]["_growth_tracker"] == 4
    else:
        assert "scaler" not in state
