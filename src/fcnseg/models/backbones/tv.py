"""ResNet and MobileNetV3 trunks from torchvision, under ``backbone.`` with torchvision's own names.

Features are taken at strides 8, 16 and 32 (ResNet ``layer2``/``layer3``/``layer4``; MobileNetV3 the
last block of each stride, found from the layer geometry). ``width`` < 1 scales every channel count for
tiny models; at ``width == 1`` the modules are torchvision's unchanged, so ImageNet weights load by name.
"""

from __future__ import annotations

import functools
import importlib
from collections import OrderedDict
from typing import Any

from torch import nn

from ..geometry import Grid, trace
from .base import TrunkSpec, scaled

__all__ = ["mobilenet_v3_trunk", "resnet_trunk"]

_RESNET_LAYERS = {
    "resnet18": [2, 2, 2, 2],
    "resnet34": [3, 4, 6, 3],
    "resnet50": [3, 4, 6, 3],
    "resnet101": [3, 4, 23, 3],
}


def _tv(name: str) -> Any:
    """A torchvision model module, imported on first use: ``torchvision.models`` imports every model and the
    detection ops (≈ 1 s), which a VGG16 or AlexNet FCN never needs."""
    return importlib.import_module(f"torchvision.models.{name}")


@functools.cache
def _scaled_resnet() -> type:
    class _ScaledResNet(_tv("resnet").ResNet):  # type: ignore[misc, name-defined]
        """torchvision's ResNet with every channel count multiplied by ``width`` (same module names)."""

        def __init__(self, block: Any, layers: list[int], width: float) -> None:
            object.__setattr__(self, "_width", width)
            object.__setattr__(self, "_stem_scaled", False)
            super().__init__(block, layers)
            stem = scaled(64, width)
            self.conv1 = nn.Conv2d(3, stem, kernel_size=7, stride=2, padding=3, bias=False)
            self.bn1 = nn.BatchNorm2d(stem)
            nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")

        def _make_layer(self, block: Any, planes: int, blocks: int, stride: int = 1, dilate: bool = False) -> Any:
            if not self._stem_scaled:
                self.inplanes = scaled(64, self._width)
                object.__setattr__(self, "_stem_scaled", True)
            return super()._make_layer(block, scaled(planes, self._width), blocks, stride, dilate)

    return _ScaledResNet


def resnet_trunk(depth: str, *, in_channels: int = 3, width: float = 1.0) -> TrunkSpec:
    """A torchvision ResNet (``"resnet50"``, ``"resnet101"``, …) as a :class:`TrunkSpec`."""
    resnet = _tv("resnet")
    block = resnet.Bottleneck if depth in ("resnet50", "resnet101") else resnet.BasicBlock
    net = (
        resnet.ResNet(block, _RESNET_LAYERS[depth])
        if width == 1.0
        else _scaled_resnet()(block, _RESNET_LAYERS[depth], width)
    )
    _set_in_channels(net, "conv1", in_channels)
    layers = OrderedDict(
        (n, getattr(net, n)) for n in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
    )
    exp = block.expansion
    return TrunkSpec(
        family=depth,
        layers=layers,
        taps={8: "layer2", 16: "layer3", 32: "layer4"},
        channels={s: scaled(c, width) * exp for s, c in ((8, 128), (16, 256), (32, 512))},
        flat=False,
        first_conv="conv1",
        skip_geometry=("downsample",),
    )


def mobilenet_v3_trunk(*, in_channels: int = 3, width: float = 1.0) -> TrunkSpec:
    """torchvision's MobileNetV3-Large as a :class:`TrunkSpec` (taps found from the geometry)."""
    net = _tv("mobilenetv3").mobilenet_v3_large(width_mult=width)
    first = net.features[0][0]
    if in_channels != 3:
        net.features[0][0] = _conv_like(first, in_channels)
    layers = OrderedDict((str(i), m) for i, m in enumerate(net.features))
    skip = ("avgpool", "fc1", "fc2")  # squeeze-excitation: global pooling, not on the pixel path
    taps: dict[int, str] = {}
    grid = Grid()
    for name, module in layers.items():
        grid = trace([module], grid, skip=skip)
        if grid.stride in (8, 16, 32):
            taps[int(grid.stride)] = name  # the last block at each stride wins
    channels = {s: _out_channels(layers[n]) for s, n in taps.items()}
    return TrunkSpec("mobilenet_v3_large", layers, taps, channels, flat=False, first_conv="0.0", skip_geometry=skip)


def _out_channels(module: nn.Module) -> int:
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    return convs[-1].out_channels


def _conv_like(conv: nn.Conv2d, in_channels: int) -> nn.Conv2d:
    return nn.Conv2d(
        in_channels,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,  # type: ignore[arg-type]
        conv.dilation,
        conv.groups,
        conv.bias is not None,  # type: ignore[arg-type]
    )


def _set_in_channels(net: nn.Module, name: str, in_channels: int) -> None:
    if in_channels != 3:
        setattr(net, name, _conv_like(getattr(net, name), in_channels))
