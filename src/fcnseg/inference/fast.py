"""The fast inference path: one call that applies every speed-up that keeps the output.

CPU (fp32): channels_last activations and weights (oneDNN's native layout: no reorder per layer),
inference mode, fixed bilinear upsampling as a grouped convolution (fcnseg's default), and optionally
``torch.compile`` with Inductor's weight freezing. CUDA: the same plus bf16 autocast by default (fp16 on
GPUs without bf16), ``cudnn.benchmark`` and optionally CUDA graphs (``torch.compile(mode="reduce-overhead")``).

No process-wide setting is changed: ``cudnn.benchmark`` and Inductor's ``freezing`` are switched on around
each call only. Benchmark mode, compilation and CUDA graphs pay off only when input sizes repeat (each new
size re-tunes, recompiles or re-captures), so they run only on **size buckets**: an image is padded at the
bottom and right to the smallest bucket that holds it, scored, and its scores cropped back to its size.
Images larger than every bucket run eagerly. Padding changes scores within the receptive field of the
padded border (as any padding does); on the CPU the default is no buckets (whole-image scores).
Scores always come back fp32 in the ordinary layout.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError

__all__ = ["DEFAULT_BUCKETS", "FastModel", "bucket_size", "optimize_for_inference"]

#: side lengths images are padded up to on the compiled / benchmark paths (VOC's 500 px fits the 512 bucket)
DEFAULT_BUCKETS = (256, 384, 512, 768, 1024)


def bucket_size(h: int, w: int, buckets: Sequence[int]) -> tuple[int, int] | None:
    """The smallest ``(bucket_h, bucket_w)`` holding ``h × w``; None when a side is larger than every bucket."""
    bh = next((b for b in sorted(buckets) if b >= h), None)
    bw = next((b for b in sorted(buckets) if b >= w), None)
    return None if bh is None or bw is None else (bh, bw)


class FastModel(nn.Module):
    """``model`` wrapped by :func:`optimize_for_inference`; call it like the model."""

    def __init__(
        self,
        model: nn.Module,
        runner: Any,
        *,
        device: torch.device,
        dtype: torch.dtype | None,
        channels_last: bool,
        buckets: Sequence[int] | None = None,
        benchmark: bool = False,
        freezing: bool = False,
    ) -> None:
        super().__init__()
        self.model = model
        self._runner = runner
        self.device, self.dtype, self.channels_last = device, dtype, channels_last
        self.buckets = tuple(buckets) if buckets else None
        self.benchmark, self.freezing = benchmark, freezing
        for attr in ("arch", "heads", "multi_head", "in_channels"):
            if hasattr(model, attr):
                setattr(self, attr, getattr(model, attr))

    @property
    def num_classes(self) -> int:
        return self.model.num_classes  # type: ignore[return-value]

    def _settings(self, bucketed: bool) -> contextlib.ExitStack:
        """cuDNN benchmark mode and Inductor freezing for this call only (restored afterwards)."""
        stack = contextlib.ExitStack()
        if bucketed and self.benchmark:
            stack.enter_context(torch.backends.cudnn.flags(enabled=True, benchmark=True))
        if bucketed and self.freezing:
            import torch._inductor.config as inductor_config

            stack.enter_context(inductor_config.patch(freezing=True))
        return stack

    def forward(self, x: Tensor) -> Any:
        x = x.to(self.device, non_blocking=True)
        h, w = x.shape[-2:]
        size = bucket_size(h, w, self.buckets) if self.buckets else (h, w)
        runner = self._runner if size is not None else self.model  # too large for every bucket: eager
        if size is not None and size != (h, w):
            x = F.pad(x, (0, size[1] - w, 0, size[0] - h))
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        amp = torch.autocast(self.device.type, dtype=self.dtype) if self.dtype is not None else contextlib.nullcontext()
        with torch.inference_mode(), amp, self._settings(size is not None and self.buckets is not None):
            out = runner(x)

        def back(t: Tensor) -> Tensor:
            return t[..., :h, :w].float().contiguous()

        return {k: back(v) for k, v in out.items()} if isinstance(out, dict) else back(out)


def optimize_for_inference(
    model: nn.Module,
    *,
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype | None = "auto",
    channels_last: bool = True,
    compile: bool = False,
    cuda_graphs: bool = False,
    buckets: Sequence[int] | None = None,
) -> FastModel:
    """``model`` prepared for fast inference on ``device`` (the model itself is moved, not copied).

    Args:
        dtype: autocast dtype (``"bfloat16"``, ``"float16"``), None for fp32, or ``"auto"``: bf16 on CUDA
            devices that support it (fp16 on older ones), fp32 on the CPU.
        channels_last: NHWC activations and weights.
        compile: ``torch.compile`` (Inductor; weights frozen as constants on CPU), on size buckets.
        cuda_graphs: capture CUDA graphs (``mode="reduce-overhead"``); CUDA only, implies ``compile``.
        buckets: side lengths to pad inputs up to; default :data:`DEFAULT_BUCKETS` on CUDA (cuDNN benchmark
            mode, the compiled graph and CUDA graphs then exist once per bucket), none on the CPU (whole-image
            scores; pass buckets when compiling for images of many sizes).

    Raises:
        ConfigError: CUDA graphs asked for off CUDA, or an unknown dtype.
    """
    from ..runtime.hardware import inference_dtype

    device = torch.device(device)
    if dtype == "auto":
        dtype = inference_dtype(device)
    elif isinstance(dtype, str):
        if dtype not in ("bfloat16", "float16"):
            raise ConfigError(f"inference dtype {dtype!r}: use bfloat16, float16, auto or None (fp32)")
        dtype = getattr(torch, dtype)
    if cuda_graphs and device.type != "cuda":
        raise ConfigError("CUDA graphs need a CUDA device")
    model = model.eval().to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    compiled = compile or cuda_graphs
    if buckets is None and device.type == "cuda":
        buckets = DEFAULT_BUCKETS
    runner: Any = model
    if compiled:
        runner = torch.compile(model, mode="reduce-overhead" if cuda_graphs else None, dynamic=False)
    return FastModel(
        model,
        runner,
        device=device,
        dtype=dtype,
        channels_last=channels_last,
        buckets=buckets,
        benchmark=device.type == "cuda",
        freezing=compiled and device.type == "cpu",
    )
