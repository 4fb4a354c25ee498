"""The four metrics: hand-counted cases and the reference fixture from shared/reference-data/demo."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from fcnseg.data.base import voc_palette
from fcnseg.metrics import ConfusionMatrix, confusion_matrix, scores


def test_hand_counted_eight_pixels() -> None:
    target = torch.tensor([0, 0, 0, 1, 1, 2, 2, 255])
    pred = torch.tensor([0, 0, 1, 1, 1, 2, 0, 2])
    hist = confusion_matrix(pred, target, 3)
    assert hist.tolist() == [[2, 1, 0], [0, 2, 0], [1, 0, 1]]
    s = scores(hist)
    assert s["pixel_accuracy"] == pytest.approx(5 / 7)
    assert s["mean_accuracy"] == pytest.approx((2 / 3 + 1 + 1 / 2) / 3)
    ius = [2 / (3 + 3 - 2), 2 / (2 + 3 - 2), 1 / (2 + 1 - 1)]
    assert s["iu"] == pytest.approx(ius)
    assert s["mean_iu"] == pytest.approx(sum(ius) / 3)
    assert s["fw_iu"] == pytest.approx(3 / 7 * ius[0] + 2 / 7 * ius[1] + 2 / 7 * ius[2])


def test_absent_class_is_nan_and_skipped_but_false_positive_counts_zero() -> None:
    target = torch.tensor([0, 0, 1, 1])
    pred = torch.tensor([0, 0, 1, 3])  # class 3 predicted but absent; class 2 absent and never predicted
    s = scores(confusion_matrix(pred, target, 4))
    assert math.isnan(s["iu"][2]) and s["iu"][3] == 0.0
    assert s["mean_iu"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert math.isnan(s["accuracy"][3]) and s["mean_accuracy"] == pytest.approx((1 + 0.5) / 2)


def test_accumulator_equals_one_shot() -> None:
    g = torch.Generator().manual_seed(0)
    preds = [torch.randint(0, 5, (7, 9), generator=g) for _ in range(3)]
    targets = [torch.randint(0, 6, (7, 9), generator=g) for _ in range(3)]  # 5 acts as an out-of-range label
    cm = ConfusionMatrix(5)
    for p, t in zip(preds, targets, strict=True):
        cm.update(p, t)
    assert torch.equal(cm.hist, confusion_matrix(torch.stack(preds), torch.stack(targets), 5))


def test_reference_fcn8s_output_scores_like_the_reference(reference_dir) -> None:
    """SPEC §4 fixture: the reference FCN-8s output vs the VOC label → 0.8425 / 0.8455 / 0.7196."""
    label = np.asarray(Image.open(reference_dir / "demo" / "label.png"))
    rgb = np.asarray(Image.open(reference_dir / "demo" / "output.png").convert("RGB"))
    palette = voc_palette(21).astype(np.int64)
    codes = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    lut = {int((r << 16) | (g << 8) | b): i for i, (r, g, b) in enumerate(palette)}
    pred = np.vectorize(lut.__getitem__)(codes)
    s = scores(confusion_matrix(torch.from_numpy(pred), torch.from_numpy(label.astype(np.int64)), 21))
    assert s["pixel_accuracy"] == pytest.approx(0.8425, abs=5e-5)
    assert s["mean_accuracy"] == pytest.approx(0.8455, abs=5e-5)
    assert s["mean_iu"] == pytest.approx(0.7196, abs=5e-5)


def test_named_puts_class_names_next_to_per_class_numbers() -> None:
    from fcnseg.metrics import named

    hist = torch.tensor([[5, 1, 0], [0, 4, 0], [0, 0, 0]])  # class 2 never in the truth
    out = named(scores(hist), ["background", "disk", "square"])
    assert out["per_class"]["disk"] == {"iu": pytest.approx(0.8), "accuracy": pytest.approx(1.0)}
    assert out["per_class"]["square"] == {"iu": None, "accuracy": None}
    assert out["iu"][0] == pytest.approx(5 / 6) and list(out["per_class"]) == ["background", "disk", "square"]


def test_numpy_arrays_score_as_tensors_do() -> None:
    """The reference score.py works on NumPy: so do confusion_matrix, scores, ConfusionMatrix.update and the band."""
    from fcnseg.metrics import boundary_band, fw_iu, mean_iu

    rng = np.random.default_rng(0)
    target = rng.integers(0, 4, (2, 9, 7)).astype(np.uint8)
    target[0, 0] = 255
    pred = rng.integers(0, 4, (2, 9, 7)).astype(np.int64)
    hist_np = confusion_matrix(pred, target, 4)
    hist_t = confusion_matrix(torch.from_numpy(pred), torch.from_numpy(target), 4)
    assert torch.equal(hist_np, hist_t)
    counted = hist_t.numpy()
    assert scores(counted) == scores(hist_t) and mean_iu(counted) == mean_iu(hist_t) and fw_iu(counted) == fw_iu(hist_t)
    acc = ConfusionMatrix(4)
    acc.update(pred[0], target[0])
    acc.update(torch.from_numpy(pred[1]), torch.from_numpy(target[1]))
    assert torch.equal(acc.hist, hist_t)
    assert torch.equal(boundary_band(target[1], 1), boundary_band(torch.from_numpy(target[1]), 1))


def test_read_only_arrays_and_pil_images_are_scored_without_a_warning() -> None:
    import warnings

    from PIL import Image

    from fcnseg.metrics import ConfusionMatrix

    mask = Image.fromarray(np.array([[0, 1], [1, 255]], np.uint8))
    pred = np.array([[0, 1], [0, 1]], np.int64)
    pred.flags.writeable = False
    cm = ConfusionMatrix(2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch: "The given NumPy array is not writable"
        cm.update(pred, np.asarray(mask))
        cm.update(pred, mask)
    assert cm.compute()["pixel_accuracy"] == 4 / 6
