"""Bilinear kernels and the fixed / learned upsampling layer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import fcnseg
from fcnseg.models import BilinearUpsample, bilinear_kernel


def _upsample_filt(size: int) -> np.ndarray:
    """SPEC.md §1.2's formula, written independently with numpy's ogrid."""
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    og = np.ogrid[:size, :size]
    return (1 - abs(og[0] - center) / factor) * (1 - abs(og[1] - center) / factor)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 15, 16, 32, 63, 64])
def test_bilinear_kernel_is_upsample_filt_on_the_diagonal(size: int) -> None:
    w = bilinear_kernel(3, size)
    assert w.shape == (3, 3, size, size)
    for c in range(3):
        np.testing.assert_allclose(w[c, c].numpy(), _upsample_filt(size), rtol=1e-6)
        for d in range(3):
            if d != c:
                assert w[c, d].abs().sum() == 0


def test_bilinear_kernel_known_values() -> None:
    np.testing.assert_allclose(bilinear_kernel(1, 4)[0, 0, 0].numpy(), [0.0625, 0.1875, 0.1875, 0.0625])
    np.testing.assert_allclose(bilinear_kernel(1, 3)[0, 0, 1].numpy(), [0.5, 1.0, 0.5])


def test_bilinear_kernel_bad_arguments() -> None:
    with pytest.raises(ValueError, match="channels >= 1"):
        bilinear_kernel(0, 4)


def test_bilinear_upsampling_interpolates_linearly() -> None:
    """k = 2s: a linear ramp stays a linear ramp (interior), the defining property of bilinear upsampling."""
    up = BilinearUpsample(1, 4, 2)
    x = torch.arange(6.0).view(1, 1, 1, 6).expand(1, 1, 6, 6).contiguous()
    y = up(x)[0, 0, 3, 2:-2]
    torch.testing.assert_close(y[1:] - y[:-1], torch.full_like(y[1:], 0.5))


def test_grouped_fast_path_equals_dense_transposed_convolution() -> None:
    up = BilinearUpsample(5, 16, 8)
    assert up.grouped_weight.shape == (5, 1, 16, 16)
    x = torch.randn(2, 5, 7, 9)
    torch.testing.assert_close(up(x), F.conv_transpose2d(x, up.weight, stride=8), rtol=1e-5, atol=1e-6)


def test_non_diagonal_weights_loaded_use_the_dense_path() -> None:
    up = BilinearUpsample(3, 4, 2)
    w = torch.randn(3, 3, 4, 4)
    up.load_state_dict({"weight": w})
    assert up.grouped_weight.numel() == 0
    x = torch.randn(1, 3, 5, 5)
    torch.testing.assert_close(up(x), F.conv_transpose2d(x, w, stride=2))


@pytest.mark.parametrize("name", ["fcn8s_vgg16", "fcn32s_alexnet", "fcn8s_resnet50"])
def test_fixed_upsampling_gets_no_gradient_and_no_optimizer_slot(name: str) -> None:
    model = fcnseg.get_model(name, num_classes=3, width=1 / 16)
    ups = [m for m in model.modules() if isinstance(m, BilinearUpsample)]
    assert ups and all(not m.weight.requires_grad for m in ups)
    params = {id(p) for p in model.parameters()}
    assert all(id(m.weight) not in params for m in ups)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    in_opt = {id(p) for g in opt.param_groups for p in g["params"]}
    assert all(id(m.weight) not in in_opt for m in ups)
    before = [m.weight.clone() for m in ups]
    with torch.no_grad():
        for n in model.score_layer_names():
            getattr(model, n).weight.normal_()
    model(torch.randn(1, 3, 40, 40)).sum().backward()
    opt.step()
    assert all(torch.equal(b, m.weight) for b, m in zip(before, ups, strict=True))
    assert all(m.weight.grad is None for m in ups)


def test_learned_upsampling_is_a_bilinear_initialised_parameter() -> None:
    model = fcnseg.get_model("fcn16s_vgg16", num_classes=3, width=1 / 16, learn_upsampling=True)
    names = {n for n, _ in model.named_parameters()}
    assert {"upscore2.weight", "upscore16.weight"} <= names
    torch.testing.assert_close(model.upscore16.weight.detach(), bilinear_kernel(3, 32))
    with torch.no_grad():
        for n in model.score_layer_names():
            getattr(model, n).weight.normal_()
    model(torch.randn(1, 3, 40, 40)).square().sum().backward()
    assert model.upscore16.weight.grad is not None and model.upscore16.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("mode", ["grouped", "dense"])
def test_upsampling_runs_in_fp32_under_cpu_autocast(mode: str) -> None:
    """oneDNN's bf16 transposed convolution with a 64×64 kernel ran 100× slower than fp32 (it made bf16
    training 5× slower than fp32): the fixed upsampling leaves autocast and computes in fp32."""
    up = BilinearUpsample(5, 64, 32)
    up.mode = mode
    x = torch.randn(2, 5, 4, 6)
    ref = up(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = up(x.bfloat16())
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, up(x.bfloat16().float()))
    assert (out - ref).abs().max() < 0.05 * ref.abs().max()
