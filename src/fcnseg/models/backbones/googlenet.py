"""GoogLeNet trunk (FCN-GoogLeNet of the paper) built from torchvision's GoogLeNet modules.

As in the paper the final average pooling and classifier are discarded and the net is scored on
``inception5b`` (stride 32), with skips from ``inception4e`` (16) and ``inception3b`` (8). The first
convolution gets ``pad`` extra pixels of zero padding (100, as the VGG nets), so the ceil-mode pools
always have input and every image size works. Sub-module names follow torchvision's, under
``backbone.``, so torchvision GoogLeNet weights transplant by name.
"""

from __future__ import annotations

import importlib
from collections import OrderedDict
from typing import Any

import torch
from torch import Tensor, nn

from ...errors import ModelError
from .base import TrunkSpec

__all__ = ["GoogLeNetInputTransform", "googlenet_trunk"]


def _gm() -> Any:
    """torchvision's GoogLeNet module, imported on first use (``torchvision.models`` imports every model, ≈ 1 s)."""
    return importlib.import_module("torchvision.models.googlenet")


_CHAIN = (
    "conv1",
    "maxpool1",
    "conv2",
    "conv3",
    "maxpool2",
    "inception3a",
    "inception3b",
    "maxpool3",
    "inception4a",
    "inception4b",
    "inception4c",
    "inception4d",
    "inception4e",
    "maxpool4",
    "inception5a",
    "inception5b",
)


class GoogLeNetInputTransform(nn.Module):
    """torchvision's ``transform_input``: ImageNet-normalised RGB → the (x − 0.5)/0.5 scale its weights use.

    A per-channel affine map held in persistent buffers (identity when off), so the setting travels
    with checkpoints and the forward pass has no branch. :func:`fcnseg.models.load_backbone_weights`
    turns it on with torchvision's GoogLeNet weights, as torchvision itself does. Extra input channels
    (e.g. depth) pass through unchanged.
    """

    _SCALE = (0.229 / 0.5, 0.224 / 0.5, 0.225 / 0.5)
    _SHIFT = ((0.485 - 0.5) / 0.5, (0.456 - 0.5) / 0.5, (0.406 - 0.5) / 0.5)

    def __init__(self, enabled: bool = False) -> None:
        super().__init__()
        self.register_buffer("scale", torch.ones(1, 3, 1, 1))
        self.register_buffer("shift", torch.zeros(1, 3, 1, 1))
        self.enabled = enabled

    @property
    def enabled(self) -> bool:
        return bool((self.scale != 1).any())

    @enabled.setter
    def enabled(self, on: bool) -> None:
        with torch.no_grad():
            self.scale.copy_(torch.tensor(self._SCALE if on else (1.0, 1.0, 1.0)).view(1, 3, 1, 1))
            self.shift.copy_(torch.tensor(self._SHIFT if on else (0.0, 0.0, 0.0)).view(1, 3, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([x[:, :3] * self.scale + self.shift, x[:, 3:]], dim=1)

    def extra_repr(self) -> str:
        return f"enabled={self.enabled}"


def googlenet_trunk(*, in_channels: int = 3, width: float = 1.0, pad: int = 100) -> TrunkSpec:
    """GoogLeNet as a :class:`TrunkSpec`; ``width`` must keep every Inception branch a whole number."""

    def conv_block(cin: int, cout: int, **kw: Any) -> nn.Module:
        first = kw.get("kernel_size") == 7
        if first:
            kw["padding"] = kw.get("padding", 0) + pad
        return _gm().BasicConv2d(in_channels if first else _w(cin, width), _w(cout, width), **kw)

    def inception(*args: Any) -> nn.Module:
        return _gm().Inception(*args, conv_block=conv_block)

    gm = _gm()
    net = gm.GoogLeNet(aux_logits=False, init_weights=True, blocks=[conv_block, inception, gm.InceptionAux])
    layers: OrderedDict[str, nn.Module] = OrderedDict(transform_input=GoogLeNetInputTransform())
    layers.update((name, getattr(net, name)) for name in _CHAIN)
    return TrunkSpec(
        family="googlenet",
        layers=layers,
        taps={8: "inception3b", 16: "inception4e", 32: "inception5b"},
        channels={8: _w(480, width), 16: _w(832, width), 32: _w(1024, width)},
        flat=False,
        first_conv="conv1.conv",
    )


def _w(channels: int, width: float) -> int:
    value = channels * width
    if value != int(value) or value < 1:
        raise ModelError(
            f"GoogLeNet width {width} gives {value} channels for a {channels}-channel layer; "
            "use a width that keeps every Inception branch whole, e.g. 1, 0.5, 0.25 or 0.125"
        )
    return int(value)
