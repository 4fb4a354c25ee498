"""Cross-entropy: summed vs averaged, ignore label, multi-task."""

from __future__ import annotations

import pytest
import torch

from fcnseg.losses import cross_entropy2d


def test_sum_is_mean_times_labelled_pixels_and_void_is_ignored() -> None:
    logits = torch.randn(2, 4, 5, 6)
    target = torch.randint(0, 4, (2, 5, 6))
    target[0, 0] = 255
    labelled = int((target != 255).sum())
    s = cross_entropy2d(logits, target, normalize=False)
    m = cross_entropy2d(logits, target, normalize=True)
    assert s.item() == pytest.approx(m.item() * labelled, rel=1e-5)
    changed = logits.clone()
    changed[0, :, 0] = 100.0  # scores at void pixels do not matter
    assert cross_entropy2d(changed, target, normalize=False).item() == pytest.approx(s.item(), rel=1e-6)


def test_all_void_gives_zero_not_nan() -> None:
    logits = torch.randn(1, 3, 4, 4, requires_grad=True)
    loss = cross_entropy2d(logits, torch.full((1, 4, 4), 255))
    assert loss.item() == 0.0
    loss.backward()


def test_multi_task_sums_heads() -> None:
    a, b = torch.randn(1, 3, 4, 4), torch.randn(1, 2, 4, 4)
    ta, tb = torch.randint(0, 3, (1, 4, 4)), torch.randint(0, 2, (1, 4, 4))
    total = cross_entropy2d({"sem": a, "geo": b}, {"sem": ta, "geo": tb})
    assert total.item() == pytest.approx((cross_entropy2d(a, ta) + cross_entropy2d(b, tb)).item())
