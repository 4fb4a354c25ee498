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


@pytest.mark.parametrize("kind", ["ce", "focal"])
def test_loss_terms_are_the_sum_and_the_labelled_pixels_weighted(kind: str) -> None:
    """pixel_loss_terms gives (sum, denominator); their ratio is the averaged loss, F.cross_entropy's with weights."""
    import torch.nn.functional as F

    from fcnseg.losses import pixel_loss, pixel_loss_terms

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 5, 6, generator=g)
    target = torch.randint(0, 4, (2, 5, 6), generator=g)
    target[1, :2] = 255
    weight = torch.tensor([0.5, 1.0, 2.0, 4.0])
    total, denominator = pixel_loss_terms(kind, logits, target, weight=weight, gamma=0.0 if kind == "focal" else 2.0)
    labelled = target[target != 255]
    assert denominator.item() == pytest.approx(float(weight[labelled].sum()))
    reference = F.cross_entropy(logits, target, weight=weight, ignore_index=255)  # focal with gamma 0 is CE
    assert (total / denominator).item() == pytest.approx(reference.item(), rel=1e-5)
    averaged = pixel_loss(kind, logits, target, normalize=True, weight=weight, gamma=0.0)
    assert averaged.item() == pytest.approx(reference.item(), rel=1e-5)
    heads_sum, heads_den = pixel_loss_terms(kind, {"a": logits, "b": logits}, {"a": target, "b": target})
    assert heads_den.item() == 2 * labelled.numel() and heads_sum.item() == pytest.approx(
        2 * pixel_loss_terms(kind, logits, target)[0].item(), rel=1e-6
    )
