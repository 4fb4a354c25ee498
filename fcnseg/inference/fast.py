"""The fast inference path: one call that applies every speed-up that keeps the output.

CPU (fp32): channels_last activations and weights (oneDNN's native layout: no reorder per layer),
inference mode, fixed bilinear upsampling as a grouped convolution (fcnseg's default), and optionally
``torch.compile`` with Inductor's weight freezing. CUDA: the same plus ``cudnn.benchmark``, bf16/fp16
autocast, and optionally CUDA graphs (``torch.compile(mode="reduce-overhead")``) for fixed input sizes.
Scores always come back fp32 in the ordinary layout.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import ConfigError

__all__ = ["FastModel", "optimize_for_inference"]


class FastModel(nn.Module):
    """``model`` wrapped by :func:`optimize_for_inference`; call it like the model."""

    def __init__(self, model: nn.Module, runner: Any, *, device: torch.device, dtype: torch.dtype | None,
                 channels_last: bool) -> None:  # fmt: skip
        super().__init__()
        self.model = model
        self._runner = runner
        self.device, self.dtype, self.channels_last = device, dtype, channels_last
        for attr in ("arch", "heads", "multi_head", "in_channels"):
            if hasattr(model, attr):
                setattr(self, attr, getattr(model, attr))

    @property
    def num_classes(self) -> int:
        return self.model.num_classes  # type: ignore[return-value]

    def forward(self, x: Tensor) -> Any:
        x = x.to(self.device, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        amp = (torch.autocast(self.device.type, dtype=self.dtype) if self.dtype is not None
               else contextlib.nullcontext())  # fmt: skip
        with torch.inference_mode(), amp:
            out = self._runner(x)
        if isinstance(out, dict):
            return {k: v.float().contiguous() for k, v in out.items()}
        return out.float().contiguous()


def optimize_for_inference(
    model: nn.Module,
    *,
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype | None = None,
    channels_last: bool = True,
    compile: bool = False,
    cuda_graphs: bool = False,
) -> FastModel:
    """``model`` prepared for fast inference on ``device`` (the model itself is moved, not copied).

    Args:
        dtype: autocast dtype (``"bfloat16"``, ``"float16"``) or None for fp32.
        channels_last: NHWC activations and weights.
        compile: ``torch.compile`` (Inductor; weights frozen as constants on CPU).
        cuda_graphs: capture CUDA graphs (``mode="reduce-overhead"``); CUDA only, implies ``compile``.

    Raises:
        ConfigError: CUDA graphs asked for off CUDA, or an unknown dtype.
    """
    device = torch.device(device)
    if isinstance(dtype, str):
        if dtype not in ("bfloat16", "float16"):
            raise ConfigError(f"inference dtype {dtype!r}: use bfloat16, float16 or None (fp32)")
        dtype = getattr(torch, dtype)
    if cuda_graphs and device.type != "cuda":
        raise ConfigError("CUDA graphs need a CUDA device")
    model = model.eval().to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    runner: Any = model
    if compile or cuda_graphs:
        if device.type == "cpu":
            import torch._inductor.config as inductor_config

            inductor_config.freezing = True  # weights become constants: prepacked once for oneDNN
        runner = torch.compile(model, mode="reduce-overhead" if cuda_graphs else None, dynamic=False)
    return FastModel(model, runner, device=device, dtype=dtype, channels_last=channels_last)
