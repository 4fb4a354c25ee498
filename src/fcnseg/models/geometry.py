"""Coordinate geometry of a layer chain: where each output cell sits in the input image.

The reference release derives its crop offsets from each layer's kernel, stride and padding
(Caffe's ``coord_map.py``); fcnseg does the same, with exact fractions, so every net (VGG16 with its
100-pixel padding, AlexNet, GoogLeNet, ResNet, MobileNetV3) aligns its score maps exactly.

A :class:`Grid` says that index ``i`` of a feature map sits at input coordinate
``origin + stride * i`` (pixel centres). For VGG16's ``conv1_1`` with pad 100, index 0 is input
coordinate -99; after ``fc6`` the grid is ``Grid(stride=32, origin=12.5)``. Convolutions
and pooling map a grid forward, transposed convolutions map it to a finer one, and two maps of the
same stride are aligned by the difference of their origins — the crop offset.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

from torch import nn

__all__ = ["Grid", "overlap", "trace", "upsample_kernel"]

_POOLS = (nn.MaxPool2d, nn.AvgPool2d)


def _pair(v: int | tuple[int, ...]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _square(name: str, v: int | tuple[int, ...]) -> int:
    a, b = _pair(v)
    if a != b:
        raise ValueError(f"fcnseg geometry needs square {name}, got {v}")
    return a


@dataclass(frozen=True)
class Grid:
    """Index ``i`` of a map sits at input coordinate ``origin + stride * i``."""

    stride: Fraction = Fraction(1)
    origin: Fraction = Fraction(0)

    def conv(self, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> Grid:
        """The grid after a convolution or pooling layer with these (square) parameters."""
        extent = dilation * (kernel - 1) + 1
        return Grid(self.stride * stride, self.origin + self.stride * (Fraction(extent - 1, 2) - padding))

    def deconv(self, kernel: int, stride: int, padding: int = 0) -> Grid:
        """The grid after a transposed convolution (upsampling by ``stride``)."""
        fine = self.stride / stride
        return Grid(fine, self.origin - fine * (Fraction(kernel - 1, 2) - padding))

    def through(self, module: nn.Module) -> Grid:
        """The grid after one leaf module (layers that do not move pixels return ``self``)."""
        if isinstance(module, nn.Conv2d):
            return self.conv(
                _square("kernel", module.kernel_size),
                _square("stride", module.stride),
                _square("padding", module.padding) if not isinstance(module.padding, str) else _same(module),
                _square("dilation", module.dilation),
            )
        if isinstance(module, _POOLS):
            return self.conv(
                _square("kernel", module.kernel_size),
                _square("stride", module.stride or module.kernel_size),
                _square("padding", module.padding),
                _square("dilation", getattr(module, "dilation", 1)),
            )
        return self


def _same(module: nn.Conv2d) -> int:
    if module.padding != "same":
        raise ValueError(f"unsupported padding {module.padding!r}")
    return (_square("dilation", module.dilation) * (_square("kernel", module.kernel_size) - 1)) // 2


def trace(modules: Iterable[nn.Module], grid: Grid | None = None, *, skip: tuple[str, ...] = ()) -> Grid:
    """Follow the main path through ``modules`` (each walked in registration order).

    Convolutions and (non-adaptive) pooling layers move the grid; layers whose qualified name contains
    one of ``skip`` (side branches such as ResNet's ``downsample`` or squeeze-excitation) are ignored.
    Parallel branches with "same" padding (Inception) leave the grid unchanged, so walking them in
    order is harmless.
    """
    grid = grid or Grid()
    for module in modules:
        for name, leaf in module.named_modules():
            if any(s in name for s in skip) or list(leaf.children()):
                continue
            grid = grid.through(leaf)
    return grid


def overlap(a: Grid, b: Grid) -> tuple[int, int, Grid]:
    """Offsets into maps ``a`` and ``b`` (same stride) at which both start covering the same point.

    Returns ``(offset_a, offset_b, grid_of_the_overlap)``; at most one offset is non-zero. Offsets that
    are not whole cells are rounded, as Caffe's crop does; fcnseg picks kernel sizes so that they are whole.
    """
    if a.stride != b.stride:
        raise ValueError(f"cannot align grids of strides {a.stride} and {b.stride}")
    d = (b.origin - a.origin) / a.stride
    shift = round(d)
    if shift >= 0:
        return shift, 0, Grid(a.stride, a.origin + a.stride * shift)
    return 0, -shift, Grid(b.stride, b.origin - b.stride * shift)


def upsample_kernel(coarse: Grid, fine: Grid) -> int:
    """Bilinear kernel size for upsampling ``coarse`` to the stride of ``fine`` with whole-cell offsets.

    An upsampling by ``f`` with kernel ``k`` shifts the grid by ``(k - 1) / 2`` fine cells, so ``k = 2f``
    (the reference's choice, e.g. 64 for ×32) when the origins differ by a half cell and ``k = 2f - 1``
    (e.g. AlexNet's 63) when they differ by whole cells.
    """
    factor = coarse.stride / fine.stride
    if factor.denominator != 1:
        raise ValueError(f"stride {coarse.stride} is not a multiple of {fine.stride}")
    f = int(factor)
    d = (coarse.origin - fine.origin) / fine.stride
    return 2 * f - 1 if d.denominator == 1 else 2 * f
