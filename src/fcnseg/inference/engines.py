"""The inference engines × precisions fcnseg can run a model on, and what each needs.

=====================  =========  ===========================================================================
engine                 precision  what runs
=====================  =========  ===========================================================================
``torch``              fp32       the model as given (PyTorch eager; the reference numerics)
``torch-bf16``         bf16       PyTorch, channels_last: a bf16 copy of the weights on CPUs (oneDNN:
                                  AMX/AVX512-BF16), bf16 autocast on GPUs (tensor cores)
``torch-fp16``         fp16       PyTorch fp16 autocast (CUDA only: GPUs without bf16)
``onnxruntime``        fp32       the exported graph (``CKPT.onnx``), onnxruntime's CPU provider
``onnxruntime-int8``   int8       onnxruntime static QDQ quantization (``CKPT.int8.onnx``), CPU
``openvino``           fp32       the exported graph compiled by OpenVINO (the ``openvino`` extra), CPU
``openvino-bf16``      bf16       the same with OpenVINO's bf16 precision hint (CPUs with bf16 units)
=====================  =========  ===========================================================================

Exported engines need the checkpoint's file (their graphs are kept beside it, keyed by its SHA-256).
Every runner takes ``(N, C, H, W)`` float tensors and returns fp32 scores like the model (a dict per head
for multi-head nets).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..runtime.hardware import has_bf16_units, has_int8_units

__all__ = [
    "ENGINES",
    "EXPORTED",
    "PRECISION",
    "build_runner",
    "default_engine",
    "eligible",
    "missing_extra",
    "unavailable",
]

#: every engine a user can force with ``--engine NAME`` (``auto`` chooses among them)
ENGINES = ("torch", "torch-bf16", "torch-fp16", "onnxruntime", "onnxruntime-int8", "openvino", "openvino-bf16")
#: each engine's arithmetic
PRECISION = {"torch": "fp32", "torch-bf16": "bf16", "torch-fp16": "fp16", "onnxruntime": "fp32",
             "onnxruntime-int8": "int8", "openvino": "fp32", "openvino-bf16": "bf16"}  # fmt: skip
#: engines that run an exported graph (CPU only; they need the checkpoint's file)
EXPORTED = ("onnxruntime", "onnxruntime-int8", "openvino", "openvino-bf16")
#: the extra that installs each exported engine's libraries
_EXTRA = {"onnxruntime": ("onnx", ("onnx", "onnxruntime", "onnxscript")),
          "openvino": ("openvino", ("onnx", "onnxscript", "openvino"))}  # fmt: skip


class CastModel(nn.Module):
    """A copy of ``model`` with its weights in ``dtype`` and channels_last, scores returned in fp32.

    On the CPU this beats autocast (measured 1.58 against 2.02 s for fcn8s_vgg16 at 500×500 on a 2-core
    Xeon with AMX, same labels): autocast casts every weight to bf16 on every call. The fixed bilinear
    upsampling stays fp32 (its kernel values are not all exact in bf16, and it runs in fp32 anyway), and so
    does local response normalization (AlexNet, GoogLeNet: PyTorch has no bf16 CPU kernel for it).
    The fp32 model is left as it was (``auto`` compares against it).
    """

    def __init__(self, model: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        import copy

        from ..models import BilinearUpsample

        self.dtype = dtype
        self.model = copy.deepcopy(model).eval().to(dtype).to(memory_format=torch.channels_last)
        for m in self.model.modules():
            if isinstance(m, BilinearUpsample):
                m.float()
            elif isinstance(m, nn.LocalResponseNorm):  # AlexNet's LRN: no bf16 CPU kernel (avg_pool3d); fp32 inside
                m.register_forward_pre_hook(lambda _m, args: tuple(a.float() for a in args))
                m.register_forward_hook(lambda _m, _args, out: out.to(dtype))

    def forward(self, x: torch.Tensor) -> Any:
        out = self.model(x.to(self.dtype).contiguous(memory_format=torch.channels_last))
        return {k: v.float() for k, v in out.items()} if isinstance(out, dict) else out.float()


def default_engine() -> str:
    """``auto``, or the engine named by the environment variable ``FCNSEG_ENGINE`` (checked)."""
    name = os.environ.get("FCNSEG_ENGINE", "auto") or "auto"
    if name != "auto" and name not in ENGINES:
        raise ConfigError(f"FCNSEG_ENGINE={name!r}: choose auto or one of {', '.join(ENGINES)}")
    return name


def missing_extra(engine: str) -> str | None:
    """Which libraries an exported engine lacks, with the extra that installs them; None when all are there."""
    family = "openvino" if engine.startswith("openvino") else "onnxruntime"
    extra, modules = _EXTRA[family]
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    return f"needs {', '.join(missing)}: pip install 'fcnseg[{extra}]'" if missing else None


def unavailable(engine: str, device: torch.device, *, source: Path | None) -> str | None:
    """Why ``engine`` cannot run here (one phrase), or None when it can (forced use; no speed judgement)."""
    if engine not in ENGINES:
        raise ConfigError(f"engine {engine!r}: choose auto or one of {', '.join(ENGINES)}")
    if engine == "torch-fp16" and device.type != "cuda":
        return "fp16 autocast is a CUDA path"
    if engine == "torch-bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return "this GPU has no bf16"
    if engine in EXPORTED:
        if device.type != "cpu":
            return f"a CPU engine (the device is {device})"
        if source is None:
            return "runs an exported graph kept beside a checkpoint file; this model came without one"
        return missing_extra(engine)
    return None


def eligible(engine: str, device: torch.device, *, source: Path | None) -> str | None:
    """Why ``auto`` does not try ``engine`` here, or None: it also needs the precision's hardware units."""
    reason = unavailable(engine, device, source=source)
    if reason or device.type != "cpu":
        return reason
    if PRECISION[engine] == "bf16" and not has_bf16_units():
        return "no bf16 units on this CPU (emulated bf16 is slower than fp32)"
    if PRECISION[engine] == "int8" and not has_int8_units():
        return "no int8 dot-product units (VNNI/AMX) on this CPU"
    return None


def build_runner(
    engine: str,
    model: nn.Module,
    *,
    device: torch.device,
    source: Path | None,
    calibration: Callable[[], list[torch.Tensor]] | None = None,
) -> nn.Module:
    """A module running ``model`` on ``engine`` (exports or loads the graph it needs beside ``source``).

    Raises:
        ConfigError: the engine cannot run here (the reason, with the extra to install when one is missing).
    """
    reason = unavailable(engine, device, source=source)
    if reason:
        raise ConfigError(f"--engine {engine}: {reason}")
    if engine == "torch":
        return model
    if engine == "torch-bf16" and device.type == "cpu":
        return CastModel(model, torch.bfloat16)
    if engine in ("torch-bf16", "torch-fp16"):
        from .fast import optimize_for_inference

        return optimize_for_inference(model, device=device, dtype="bfloat16" if engine == "torch-bf16" else "float16")
    from ..export.cache import cached_onnx

    assert source is not None
    path = cached_onnx(source, model, int8=engine == "onnxruntime-int8", calibration=calibration)
    if engine.startswith("onnxruntime"):
        from ..export.int8 import OnnxModule

        return OnnxModule(path, model)
    from ..export.openvino import OpenVinoModule

    precision = "bf16" if engine == "openvino-bf16" else "f32"
    return OpenVinoModule(path, model, precision=precision, cache_dir=source.with_name(source.stem + ".openvino"))
