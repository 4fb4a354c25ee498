"""The FCN's own layers: zero-initialised score convolutions and bilinear upsampling.

Shapes follow the reference: a score layer is a 1×1 convolution ``C → K`` whose weights and bias start
at zero; an upsampling layer is a transposed convolution ``K → K`` with no bias, kernel ``k``, stride
``s``, padding 0, initialised with the bilinear kernel on the class diagonal.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["UPSAMPLING_MODES", "BilinearUpsample", "bilinear_kernel", "crop", "score_layer", "set_upsampling"]

#: how a fixed bilinear upsampling layer runs (see :func:`set_upsampling`)
UPSAMPLING_MODES = ("auto", "dense", "grouped", "resize")


def bilinear_kernel(channels: int, size: int) -> Tensor:
    """The reference ``upsample_filt`` of ``size`` placed on the diagonal of a ``channels²`` weight.

    Args:
        channels: number of input (= output) channels.
        size: kernel size ``k``.

    Returns:
        Tensor of shape ``(channels, channels, size, size)``: ``w[c, c]`` is the bilinear filter,
        ``w[c, d]`` is zero for ``c != d``.

    Example:
        >>> bilinear_kernel(1, 4)[0, 0, 0]
        tensor([0.0625, 0.1875, 0.1875, 0.0625])
    """
    if channels < 1 or size < 1:
        raise ValueError(f"bilinear_kernel needs channels >= 1 and size >= 1, got {channels}, {size}")
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    if torch.get_default_device().type == "meta":  # a shape only (a checkpoint's header being checked): meta's
        return torch.empty(channels, channels, size, size)  # arange would import torch._dynamo (≈ 1 s)
    og = torch.arange(size, dtype=torch.float64)
    filt1d = 1 - (og - center).abs() / factor
    filt = torch.outer(filt1d, filt1d).float()
    weight = torch.zeros(channels, channels, size, size)
    idx = torch.arange(channels)
    weight[idx, idx] = filt
    return weight


def score_layer(in_channels: int, num_classes: int) -> nn.Conv2d:
    """A 1×1 score convolution with zero weights and bias (the reference initialisation)."""
    conv = nn.Conv2d(in_channels, num_classes, kernel_size=1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


class BilinearUpsample(nn.ConvTranspose2d):
    """Transposed convolution initialised bilinear, fixed (reference release) or learned (CVPR paper).

    The state-dict entry is ``weight`` of shape ``(K, K, k, k)`` in both modes, exactly as Caffe's
    Deconvolution layer and torchfcn store it. When fixed, ``weight`` is a buffer, so it never receives
    a gradient and is never handed to an optimizer; and as long as it stays diagonal (class ``c`` only
    feeds class ``c``, as the bilinear initialisation and the reference weights are) the forward pass
    runs it as a ``K``-group convolution, ``K`` times fewer operations with the same output.

    Args:
        channels: number of classes ``K``.
        kernel_size: ``k``.
        stride: upsampling factor ``s``.
        learnable: make ``weight`` a trainable parameter.
    """

    def __init__(self, channels: int, kernel_size: int, stride: int, *, learnable: bool = False) -> None:
        super().__init__(channels, channels, kernel_size, stride=stride, bias=False)
        weight = bilinear_kernel(channels, kernel_size)
        self.learnable = learnable
        if learnable:
            self.weight = nn.Parameter(weight)
        else:
            del self.weight
            self.register_buffer("weight", weight)
        self.register_buffer("grouped_weight", torch.empty(0), persistent=False)
        self.mode = "auto"
        self._refresh_grouped()

    def _refresh_grouped(self) -> None:
        w = self.weight.detach()
        if w.is_meta:  # shape-only model (e.g. built under ``torch.device("meta")``)
            self.grouped_weight = torch.empty(0, device=w.device)
            return
        idx = torch.arange(w.shape[0], device=w.device)
        diag = w[idx, idx]  # (K, k, k)
        off_diagonal = w.abs().sum() - diag.abs().sum()
        if not self.learnable and float(off_diagonal) == 0.0:
            self.grouped_weight = diag.unsqueeze(1).clone()  # (K, 1, k, k) for groups=K
        else:
            self.grouped_weight = torch.empty(0, device=w.device, dtype=w.dtype)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._refresh_grouped()

    @property
    def is_bilinear(self) -> bool:
        """Fixed, diagonal and equal to the bilinear kernel of ``k = 2 × stride`` (what ``resize`` needs)."""
        k, s = self.kernel_size[0], self.stride[0]
        if not self.grouped_weight.numel() or k != 2 * s:
            return False
        return bool(
            torch.equal(
                self.grouped_weight[:, 0].cpu(), bilinear_kernel(1, k)[0, 0].expand_as(self.grouped_weight[:, 0])
            )
        )

    def forward(self, x: Tensor, output_size: list[int] | None = None) -> Tensor:
        if x.device.type == "cpu" and (x.dtype != torch.float32 or torch.is_autocast_enabled("cpu")):
            # oneDNN has no fast bf16/fp16 transposed convolution with large kernels: the 64×64 stride-32 one ran
            # 100× slower in bf16 than in fp32 (0.66 s against a few ms per batch of 8). Scores upsample in fp32.
            with torch.autocast("cpu", enabled=False):
                return self._upsample(x.float())
        return self._upsample(x)

    def _upsample(self, x: Tensor) -> Tensor:
        if self.mode == "dense":
            return F.conv_transpose2d(x, self.weight.to(x.dtype), stride=self.stride)
        if self.mode == "resize":
            return _bilinear_resize(x, self.stride[0])
        if self.grouped_weight.numel():
            return F.conv_transpose2d(x, self.grouped_weight.to(x.dtype), stride=self.stride, groups=x.shape[1])
        return F.conv_transpose2d(x, self.weight.to(x.dtype), stride=self.stride)

    def extra_repr(self) -> str:
        return super().extra_repr() + (", learnable" if self.learnable else ", fixed")


def _bilinear_resize(x: Tensor, factor: int) -> Tensor:
    """The stride-``f``, kernel-``2f`` bilinear deconvolution as a zero-padded bilinear resize.

    The deconvolution's output ``o`` reads input coordinate ``(o + 0.5) / f - 1``; a bilinear resize
    (``align_corners=False``) of the input padded by one zero on each side reads ``(j + 0.5) / f - 1.5``,
    the same point for ``j = o + f / 2``; the zero padding reproduces the deconvolution's fading edges.
    So the slice below equals the deconvolution everywhere, not only inside the crop.
    """
    h, w = x.shape[-2:]
    up = F.interpolate(F.pad(x, (1, 1, 1, 1)), scale_factor=factor, mode="bilinear", align_corners=False)
    half = factor // 2
    return up[..., half : half + (h + 1) * factor, half : half + (w + 1) * factor]


def set_upsampling(model: nn.Module, mode: str) -> list[str]:
    """Choose how every fixed bilinear upsampling layer of ``model`` runs; returns the layers changed.

    ``auto`` (default): grouped while the weight is diagonal, else dense. ``dense``: the ``K×K``
    transposed convolution, as Caffe. ``grouped``: a ``K``-group transposed convolution (exact, ``K``
    times less work). ``resize``: pad + bilinear ``Resize`` + slice, exact for kernel ``2 × stride``
    (every VGG16 layer; not AlexNet's 63/32 or ResNet's 3/2, which then run grouped) — the
    formulation deployment runtimes run fastest.

    Returns:
        The names of the layers that now run in ``mode``.

    Raises:
        ValueError: unknown mode, or a layer that cannot run that way (learned or non-bilinear weights).
    """
    if mode not in UPSAMPLING_MODES:
        raise ValueError(f"upsampling mode {mode!r}: use one of {', '.join(UPSAMPLING_MODES)}")
    changed = []
    for name, m in model.named_modules():
        if not isinstance(m, BilinearUpsample):
            continue
        if mode == "grouped" and not m.grouped_weight.numel():
            raise ValueError(f"{name}: learned or non-diagonal weights cannot run as a grouped deconvolution")
        if mode == "resize" and not m.is_bilinear:  # not exact as a resize: the grouped form is
            if not m.grouped_weight.numel():
                raise ValueError(f"{name}: learned or non-diagonal weights cannot run as a resize")
            m.mode = "grouped"
            continue
        m.mode = mode
        changed.append(name)
    return changed


def crop(x: Tensor, offset: int, height: int, width: int) -> Tensor:
    """``x[..., offset:offset + height, offset:offset + width]`` (Caffe's Crop layer, both axes)."""
    return x[..., offset : offset + height, offset : offset + width]
