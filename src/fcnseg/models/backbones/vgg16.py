"""VGG16 trunk, exactly as the reference FCNs use it (Caffe layer names and geometry).

``conv1_1`` has padding 100 so that any input, even 1×1, yields at least one ``fc6`` cell; pools are
2×2 stride 2 with Caffe's ceil rounding; ``fc6`` is VGG16's first fully connected layer as a 7×7
convolution with no padding (4096×512×7×7) and ``fc7`` its second as a 1×1 convolution, each followed
by ReLU and dropout 0.5.

``pad100=False`` is the memory-lean variant: ``conv1_1`` pads 1 (as VGG16 itself) and ``fc6`` pads 3
(a "same" 7×7), so the trunk works on the image instead of a 200-pixel larger canvas. The crop
offsets follow from this geometry like any other (:mod:`fcnseg.models.geometry`), so alignment stays
exact; the weights are the same tensors, so reference and ImageNet weights load unchanged.

``output_stride`` 16 or 8 is shift-and-stitch as filter rarefaction (paper §3.2): the last pool
(16), or the last two (8), take stride 1, and every later filter is dilated by the stride removed
before it: with 8, ``conv5_*`` by 2 (padding 2), ``pool5`` by 2 and ``fc6`` by 4; with 16, ``fc6`` by 2.
``fc6`` keeps pad 0 with ``pad100`` and pads ``3 × dilation`` without it; ``fc7`` is 1×1, which a
dilation leaves unchanged, so it is left undilated. The stride-1 pools are :class:`DenseMaxPool2d`:
every window that overlaps the map, so each ceil-mode window the strided pool takes at any shift of
the input is among them. The fc7 map subsampled at its phase (from the grids) is then the stride-32
map cell for cell, borders included; with ``pad100`` every phase is the stride-32 map of the input
shifted by a multiple of ``output_stride`` (the interleaved shift-and-stitch output;
``tests/models/test_dilation.py``). Without ``pad100`` the other phases' border cells see each layer's
own zero padding where a shifted input would have pixels, as any padded net does.
Weight shapes do not change: stride-32 and ImageNet weights load into a dilated trunk unchanged.
"""

from __future__ import annotations

from collections import OrderedDict

import torch.nn.functional as F
from torch import Tensor, nn

from ...errors import ModelError
from .base import TrunkSpec, init_trunk, scaled

__all__ = ["OUTPUT_STRIDES", "VGG16_BLOCKS", "DenseMaxPool2d", "check_output_stride", "vgg16_trunk"]

#: the output strides a VGG16 trunk is built for, and the blocks whose pool then takes stride 1
OUTPUT_STRIDES = {32: (), 16: (5,), 8: (4, 5)}

#: (block index, number of 3×3 convolutions, output channels)
VGG16_BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512))


class DenseMaxPool2d(nn.MaxPool2d):
    """A stride-1 max pool over every window that overlaps the map: the dense form of a strided pool.

    It pads ``dilation × (kernel − 1)`` cells on every side, so each window a stride-``s`` ceil-mode
    pool takes, at any of the ``s`` shifts of its input, is one of its windows (ceil mode's partial
    windows at the bottom and right included). ``padding`` says so for the geometry
    (:mod:`fcnseg.models.geometry` reads it). A pad PyTorch's pooling takes (at most half the window)
    is its −∞ padding; a larger one (``pool5`` at output stride 8) is applied here with zeros, which
    is the same for the non-negative maps it pools (VGG16's pools follow a ReLU; every window holds a
    real cell) and, unlike −∞, leaves int8 calibration finite (a −∞ pad gave a NaN zero point).

    Shapes: ``(N, C, H, W)`` → ``(N, C, H + e, W + e)`` with ``e = dilation × (kernel − 1)``.
    """

    def __init__(self, kernel_size: int, dilation: int = 1) -> None:
        super().__init__(kernel_size, stride=1, dilation=dilation)
        self.padding = dilation * (kernel_size - 1)

    def forward(self, x: Tensor) -> Tensor:
        k, d, p = int(self.kernel_size), int(self.dilation), int(self.padding)  # type: ignore[arg-type]
        if 2 * p > d * (k - 1) + 1:  # over PyTorch's limit: pad explicitly (zeros: the input is non-negative)
            x, p = F.pad(x, (p, p, p, p)), 0
        return F.max_pool2d(x, k, 1, p, d)


def check_output_stride(value: object) -> int:
    """``value`` if it is the int 32, 16 or 8; otherwise a one-line :class:`ModelError`."""
    if type(value) is not int or value not in OUTPUT_STRIDES:
        raise ModelError(f"output_stride must be 32, 16 or 8, got {value!r}")
    return value


def vgg16_trunk(*, in_channels: int = 3, width: float = 1.0, pad100: bool = True, output_stride: int = 32) -> TrunkSpec:
    """The VGG16 trunk as a :class:`TrunkSpec` with taps pool3 (8), pool4 (16) and drop7 (32).

    ``output_stride`` 16 or 8 dilates the trunk (module docstring); the taps keep their level keys while
    their real strides become ``min(level, output_stride)``.
    """
    check_output_stride(output_stride)
    pad = 100 if pad100 else 1
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    c_in, dilation = in_channels, 1  # dilation: the strides removed so far (filter rarefaction)
    channels: dict[int, int] = {}
    for block, n_convs, c in VGG16_BLOCKS:
        c_out = scaled(c, width)
        for i in range(1, n_convs + 1):
            padding = pad if (block, i) == (1, 1) else dilation
            layers[f"conv{block}_{i}"] = nn.Conv2d(c_in, c_out, 3, padding=padding, dilation=dilation)
            layers[f"relu{block}_{i}"] = nn.ReLU(inplace=True)
            c_in = c_out
        if block in OUTPUT_STRIDES[output_stride]:
            layers[f"pool{block}"] = DenseMaxPool2d(2, dilation=dilation)
            dilation *= 2
        else:
            layers[f"pool{block}"] = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        channels[2**block] = c_out
    fc = scaled(4096, width)
    layers["fc6"] = nn.Conv2d(c_in, fc, 7, padding=0 if pad100 else 3 * dilation, dilation=dilation)
    layers["relu6"] = nn.ReLU(inplace=True)
    layers["drop6"] = nn.Dropout(0.5)
    layers["fc7"] = nn.Conv2d(fc, fc, 1)
    layers["relu7"] = nn.ReLU(inplace=True)
    layers["drop7"] = nn.Dropout(0.5)
    init_trunk(layers)
    return TrunkSpec(
        family="vgg16",
        layers=layers,
        taps={8: "pool3", 16: "pool4", 32: "drop7"},
        channels={8: channels[8], 16: channels[16], 32: fc},
        flat=True,
        first_conv="conv1_1",
        output_stride=output_stride,
    )
