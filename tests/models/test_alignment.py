"""Empirical alignment probe: score pixel p looks at input pixel p, for every registered net.

Every convolution gets uniform positive weights and every max pool becomes an average pool of the
same geometry, so each score cell's computation is mirror-symmetric about its receptive-field centre.
The centroid of |∂ score[p, p] / ∂ input| then sits exactly at the input position the net aligns with
pixel p; with correct crops that is (p, p). The image is larger than the receptive field (VGG16 404 px,
GoogLeNet 907 px) so borders do not skew the centroid. A one-pixel crop error moves it by ~1 px.
Dilated VGG16 nets (output_stride 16, 8) are probed the same way, their stride-1 pools averaged too.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import fcnseg
from fcnseg.models.backbones.vgg16 import DenseMaxPool2d
from tests.conftest import tiny_width


class _DenseAvgPool(nn.Module):
    """The average-pool twin of a :class:`DenseMaxPool2d` (stride 1, dilated, padded by its extent − 1)."""

    def __init__(self, pool: DenseMaxPool2d) -> None:
        super().__init__()
        self.k, self.d, self.p = int(pool.kernel_size), int(pool.dilation), int(pool.padding)

    def forward(self, x: Tensor) -> Tensor:
        w = torch.full((x.shape[1], 1, self.k, self.k), 1.0 / self.k**2, dtype=x.dtype)
        return F.conv2d(F.pad(x, [self.p] * 4), w, dilation=self.d, groups=x.shape[1])


def _symmetric(model: nn.Module) -> nn.Module:
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, DenseMaxPool2d):
                setattr(module, name, _DenseAvgPool(child))
            elif isinstance(child, nn.MaxPool2d):
                pool = nn.AvgPool2d(child.kernel_size, child.stride, child.padding, ceil_mode=child.ceil_mode)
                setattr(module, name, pool)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.fill_(1.0 / m.weight[0].numel())
                if m.bias is not None:
                    m.bias.zero_()
    return model.eval()


def _centroid(model: nn.Module, size: int, p: int) -> tuple[float, float]:
    x = torch.ones(1, 3, size, size, requires_grad=True)
    model(x)[0, :, p, p].sum().backward()
    g = x.grad[0].abs().sum(0).double()
    idx = torch.arange(size, dtype=torch.float64)
    return float((g.sum(1) * idx).sum() / g.sum()), float((g.sum(0) * idx).sum() / g.sum())


@pytest.mark.parametrize("name", fcnseg.list_models())
def test_score_pixel_p_is_centred_on_input_pixel_p(name: str) -> None:
    model = _symmetric(fcnseg.get_model(name, num_classes=1, width=tiny_width(name)))
    size = 1025 if "googlenet" in name else 513
    p = size // 2
    cy, cx = _centroid(model, size, p)
    assert abs(cy - p) < 1e-3 and abs(cx - p) < 1e-3, (name, cy, cx)


def test_probe_detects_a_one_pixel_crop_error() -> None:
    model = _symmetric(fcnseg.get_model("fcn8s_vgg16", num_classes=1, width=1 / 16))
    model._final_crop += 1  # the classic off-by-one
    cy, _ = _centroid(model, 513, 256)
    assert abs(cy - 257) < 1e-2


@pytest.mark.parametrize("name", fcnseg.list_models("*vgg16"))
def test_memory_lean_mode_is_aligned_too(name: str) -> None:
    """pad100=False re-derives the offsets from the new geometry; the probe holds exactly as before."""
    model = _symmetric(fcnseg.get_model(name, num_classes=1, width=1 / 16, pad100=False))
    cy, cx = _centroid(model, 513, 256)
    assert abs(cy - 256) < 1e-3 and abs(cx - 256) < 1e-3, (name, cy, cx)


@pytest.mark.parametrize("pad100", [True, False])
@pytest.mark.parametrize("output_stride", [16, 8])
def test_dilated_nets_are_aligned_too(output_stride: int, pad100: bool) -> None:
    """Shift-and-stitch by dilation (output_stride 16, 8): offsets from the real grid; the probe holds exactly."""
    model = fcnseg.get_model("fcn32s_vgg16", num_classes=1, width=1 / 16, pad100=pad100, output_stride=output_stride)
    assert model.grids[32].stride == output_stride
    cy, cx = _centroid(_symmetric(model), 513, 256)
    assert abs(cy - 256) < 1e-3 and abs(cx - 256) < 1e-3, (output_stride, pad100, cy, cx)
