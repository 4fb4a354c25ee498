"""The backbone contract every FCN trunk follows.

A backbone is described by a :class:`TrunkSpec`: an ordered chain of named layers (applied one after
the other) plus *taps*, the layers whose outputs the FCN scores, keyed by their stride. For a 64×64
input, VGG16 (pad 100) gives::

    conv1_1 … pool3  → tap  8: (N, 256, 33, 33)   "pool3"
    … pool4          → tap 16: (N, 512, 17, 17)   "pool4"
    … fc6, fc7, drop7 → tap 32: (N, 4096, 3, 3)   "drop7"  (fc6 is a 7×7 convolution, pad 0)

The FCN computes each tap's coordinate grid from the chain's layer geometry
(:mod:`fcnseg.models.geometry`), so the contract asks nothing about padding or offsets.

``flat=True`` (the reference nets) registers the layers on the FCN itself under their Caffe names
(``conv1_1.weight``, ``fc6.weight``…), so reference and torchfcn state dicts load unchanged;
``flat=False`` (torchvision backbones) registers them under ``backbone`` as torchvision's own FCN does
(``backbone.layer1.0.conv1.weight``).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from torch import nn

__all__ = ["TrunkSpec", "init_trunk", "scaled"]


@dataclass
class TrunkSpec:
    """An ordered chain of layers with taps at strides 8, 16 and 32.

    Attributes:
        family: backbone family name ("vgg16", "alexnet", "googlenet", "resnet50", …).
        layers: the chain, applied in order.
        taps: stride → name of the layer whose output is the feature at that stride.
        channels: stride → number of channels of that feature.
        flat: register the layers on the FCN under their own (reference) names.
        skip_geometry: substrings of sub-module names that are side branches, not the main path.
        first_conv: name path of the first convolution (the one ``in_channels`` changes).
        output_stride: real stride of the deepest tap (32; 16 or 8 for a dilated trunk, whose tap at
            level ``s`` then has stride ``min(s, output_stride)``).
    """

    family: str
    layers: OrderedDict[str, nn.Module]
    taps: dict[int, str]
    channels: dict[int, int]
    flat: bool
    first_conv: str
    skip_geometry: tuple[str, ...] = field(default_factory=tuple)
    output_stride: int = 32


def init_trunk(layers: OrderedDict[str, nn.Module]) -> None:
    """He initialisation for training a trunk from scratch (pretrained weights overwrite it). A trunk on the
    ``meta`` device (shapes only, e.g. a checkpoint's model before its weights load) has nothing to initialise:
    there, ``normal_`` would also import ``torch._dynamo`` (≈ 1 s)."""
    for m in layers.values():
        if isinstance(m, nn.Conv2d) and not m.weight.is_meta:
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def scaled(channels: int, width: float, multiple: int = 1) -> int:
    """``channels × width`` rounded to a positive multiple of ``multiple`` (for grouped convolutions)."""
    return max(multiple, round(channels * width / multiple) * multiple)
