"""int8 CPU inference: onnxruntime static quantization of the exported FCN, and a module that runs it.

Chosen by measurement (``docs/PERFORMANCE.md``): onnxruntime's static QDQ quantization (weights int8
per output channel, activations uint8 per tensor, calibrated on real images by min–max) runs fcn8s_vgg16
several times faster than the fp32 PyTorch path on CPUs with VNNI/AMX, with a mean-IU loss far under a
point on held-out data; the score layers and the fixed bilinear upsampling stay fp32 (their
inputs span the whole score range, and they are a negligible share of the FLOPs).
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import ExportError
from ..io import atomic_write
from .onnx import export_onnx
from .runtime import RuntimeModule

__all__ = ["OnnxModule", "quantize_int8"]


class _Reader:
    """onnxruntime's ``CalibrationDataReader`` protocol over preprocessed ``(C, H, W)`` tensors."""

    def __init__(self, name: str, images: Iterable[torch.Tensor]) -> None:
        self._it: Iterator[torch.Tensor] = iter(images)
        self.name = name

    def get_next(self) -> dict[str, np.ndarray] | None:
        x = next(self._it, None)
        return None if x is None else {self.name: x.unsqueeze(0).float().numpy()}


def quantize_int8(
    model: nn.Module,
    path: str | Path,
    calibration: Iterable[torch.Tensor],
    *,
    keep_fp32: tuple[str, ...] = ("score", "upscore"),
) -> Path:
    """Export ``model`` to ONNX and write its int8 (QDQ) version to ``path``, calibrated on ``calibration``.

    Args:
        calibration: preprocessed images ``(C, H, W)`` as the model takes them (a few dozen suffice).
        keep_fp32: name prefixes of layers left unquantized.

    Raises:
        ExportError: export or quantization failed, or there was no calibration image.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    images = list(calibration)
    if not images:
        raise ExportError("int8 quantization needs calibration images; none were given")
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        export_onnx(model, fp32, check_sizes=((64, 64),))
        import onnx

        graph = onnx.load(str(fp32), load_external_data=False).graph
        exclude = [n.name for n in graph.node if any(p in n.name for p in keep_fp32)]
        out = Path(tmp) / "int8.onnx"
        try:
            with _quiet_root_logger():
                quantize_static(
                    str(fp32),
                    str(out),
                    _Reader(graph.input[0].name, images),
                    quant_format=QuantFormat.QDQ,
                    per_channel=True,
                    weight_type=QuantType.QInt8,
                    activation_type=QuantType.QUInt8,
                    calibrate_method=CalibrationMethod.MinMax,
                    nodes_to_exclude=exclude,
                    extra_options={"ActivationSymmetric": False},
                )
        except Exception as e:
            raise ExportError(f"int8 quantization failed: {type(e).__name__}: {e}") from None
        with atomic_write(path) as f:
            f.write(out.read_bytes())
    return Path(path)


class OnnxModule(RuntimeModule):
    """An ONNX file run by onnxruntime behind the ``nn.Module`` interface fcnseg's inference uses
    (:class:`~fcnseg.export.runtime.RuntimeModule`: scores like the FCN ``like`` it was exported from)."""

    def __init__(self, path: str | Path, like: nn.Module, *, threads: int | None = None) -> None:
        super().__init__(like)
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise ExportError(f"{path}: onnxruntime cannot load it ({type(e).__name__}: {e})") from None
        self.path = Path(path)
        self.input_name = self.session.get_inputs()[0].name

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        return self.session.run(None, {self.input_name: x})


#: onnxruntime's quantizer advises through the root logger on every call
_ADVICE = "Please consider"  # "… to run pre-processing before quantization" and its variants


class _DropAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_ADVICE)


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """Keep onnxruntime's quantization advice out of the user's console. It calls ``logging.warning``, which prints
    through the root logger and, when the root logger has no handler, installs a console handler there for good
    (after which every library's INFO records that reach the root would print twice)."""
    root = logging.getLogger()
    guard, drop = logging.NullHandler(), _DropAdvice()
    root.addHandler(guard)
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)
        root.removeHandler(guard)
