"""VGG16 trunk, exactly as the reference FCNs use it (Caffe layer names and geometry).

``conv1_1`` has padding 100 so that any input, even 1×1, yields at least one ``fc6`` cell; pools are
2×2 stride 2 with Caffe's ceil rounding; ``fc6`` is VGG16's first fully connected layer as a 7×7
convolution with no padding (4096×512×7×7) and ``fc7`` its second as a 1×1 convolution, each followed
by ReLU and dropout 0.5.

``pad100=False`` is the memory-lean variant: ``conv1_1`` pads 1 (as VGG16 itself) and ``fc6`` pads 3
(a "same" 7×7), so the trunk works on the image instead of a 200-pixel larger canvas. The crop
offsets follow from this geometry like any other (:mod:`fcnseg.models.geometry`), so alignment stays
exact; the weights are the same tensors, so reference and ImageNet weights load unchanged.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from .base import TrunkSpec, init_trunk, scaled

__all__ = ["VGG16_BLOCKS", "vgg16_trunk"]

#: (block index, number of 3×3 convolutions, output channels)
VGG16_BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512))


def vgg16_trunk(*, in_channels: int = 3, width: float = 1.0, pad100: bool = True) -> TrunkSpec:
    """The VGG16 trunk as a :class:`TrunkSpec` with taps pool3 (8), pool4 (16) and drop7 (32)."""
    pad = 100 if pad100 else 1
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    c_in = in_channels
    channels: dict[int, int] = {}
    for block, n_convs, c in VGG16_BLOCKS:
        c_out = scaled(c, width)
        for i in range(1, n_convs + 1):
            padding = pad if (block, i) == (1, 1) else 1
            layers[f"conv{block}_{i}"] = nn.Conv2d(c_in, c_out, 3, padding=padding)
            layers[f"relu{block}_{i}"] = nn.ReLU(inplace=True)
            c_in = c_out
        layers[f"pool{block}"] = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        channels[2**block] = c_out
    fc = scaled(4096, width)
    layers["fc6"] = nn.Conv2d(c_in, fc, 7, padding=0 if pad100 else 3)
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
    )
