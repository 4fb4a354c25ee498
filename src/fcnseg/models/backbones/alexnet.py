"""AlexNet trunks: the reference FCN-AlexNet's CaffeNet, and torchvision's AlexNet layout.

CaffeNet (reference): conv1 96 11×11 stride 4 **pad 100** → ReLU → pool 3×3/2 (ceil) → LRN(5, 1e-4, 0.75)
→ conv2 256 5×5 pad 2 group 2 → ReLU → pool → LRN → conv3 384 → conv4 384 group 2 → conv5 256 group 2 →
pool5 → fc6 (256→4096, 6×6) → fc7 (1×1), ReLU and dropout 0.5 after each fc.

torchvision's AlexNet differs (64/192/384/256/256 channels, no LRN, no groups), so its ImageNet weights
cannot go into CaffeNet's shapes; ``caffe=False`` builds a trunk with its shapes, the same Caffe layer
names, pad 100 and ceil pooling, so those weights transplant exactly.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from .base import TrunkSpec, init_trunk, scaled

__all__ = ["alexnet_trunk"]


def alexnet_trunk(*, in_channels: int = 3, width: float = 1.0, caffe: bool = True, pad: int = 100) -> TrunkSpec:
    """The AlexNet trunk (CaffeNet when ``caffe``) with its single tap, drop7, at stride 32."""
    g = 2 if caffe else 1
    c1, c2, c3, c4, c5 = (96, 256, 384, 384, 256) if caffe else (64, 192, 384, 256, 256)
    c1, c2, c3, c4, c5 = (scaled(c, width, multiple=g) for c in (c1, c2, c3, c4, c5))
    fc = scaled(4096, width)
    L: OrderedDict[str, nn.Module] = OrderedDict()
    L["conv1"] = nn.Conv2d(in_channels, c1, 11, stride=4, padding=pad)
    L["relu1"] = nn.ReLU(inplace=True)
    L["pool1"] = nn.MaxPool2d(3, stride=2, ceil_mode=True)
    if caffe:
        L["norm1"] = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)
    L["conv2"] = nn.Conv2d(c1, c2, 5, padding=2, groups=g)
    L["relu2"] = nn.ReLU(inplace=True)
    L["pool2"] = nn.MaxPool2d(3, stride=2, ceil_mode=True)
    if caffe:
        L["norm2"] = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)
    L["conv3"] = nn.Conv2d(c2, c3, 3, padding=1)
    L["relu3"] = nn.ReLU(inplace=True)
    L["conv4"] = nn.Conv2d(c3, c4, 3, padding=1, groups=g)
    L["relu4"] = nn.ReLU(inplace=True)
    L["conv5"] = nn.Conv2d(c4, c5, 3, padding=1, groups=g)
    L["relu5"] = nn.ReLU(inplace=True)
    L["pool5"] = nn.MaxPool2d(3, stride=2, ceil_mode=True)
    L["fc6"] = nn.Conv2d(c5, fc, 6)
    L["relu6"] = nn.ReLU(inplace=True)
    L["drop6"] = nn.Dropout(0.5)
    L["fc7"] = nn.Conv2d(fc, fc, 1)
    L["relu7"] = nn.ReLU(inplace=True)
    L["drop7"] = nn.Dropout(0.5)
    init_trunk(L)
    return TrunkSpec(
        family="alexnet" if caffe else "alexnet_tv",
        layers=L,
        taps={32: "drop7"},
        channels={32: fc},
        flat=True,
        first_conv="conv1",
    )
