"""int8 OpenVINO IR by NNCF post-training quantization (the ``openvino`` extra, which brings NNCF).

The exported fp32 graph is read by OpenVINO and quantized by ``nncf.quantize`` on calibration images (the
checkpoint's own training images, preprocessed): int8 weights and activations on the CPU's VNNI/AMX units. The
score layers and the fixed bilinear upsampling stay fp32 — they read the whole score range and are a negligible
share of the FLOPs — as in onnxruntime's int8 path (:mod:`fcnseg.export.int8`). Whether the result is accurate
enough is the accuracy guard's call (:mod:`fcnseg.inference.auto`: ≥ 99.5 % of pixels as fp32 labels them).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import ExportError

__all__ = ["fp32_operations", "quantize_openvino"]

#: weight names whose consumers stay fp32
_KEEP = ("score", "upscore")


def fp32_operations(model: Any, keep: tuple[str, ...] = _KEEP) -> list[str]:
    """Friendly names of the operations that consume a constant named ``score…``/``upscore…`` (the score layers
    and upsampling), which NNCF is told to leave unquantized."""
    names = []
    for op in model.get_ordered_ops():
        for value in op.input_values():
            source = value.get_node()
            if source.get_type_name() in ("Constant", "Convert") and any(k in source.get_friendly_name() for k in keep):
                names.append(op.get_friendly_name())
                break
    return names


def quantize_openvino(
    onnx_path: str | Path, out: str | Path, calibration: Iterable[Any], ignored: Iterable[str] = ()
) -> dict[str, Any]:
    """Quantize the fp32 ONNX graph at ``onnx_path`` to OpenVINO IR at ``out`` (``.xml`` + ``.bin``).

    Args:
        calibration: preprocessed images ``(C, H, W)`` (tensors or arrays), a few dozen at most.
        ignored: further operation names to keep fp32.

    Returns:
        ``{"kept_fp32": n}``: how many operations stayed fp32.

    Raises:
        ExportError: no calibration image, or NNCF / OpenVINO failed.
    """
    import numpy as np

    try:
        import nncf
        import openvino as ov
    except ImportError as e:
        raise ExportError(f"openvino-int8 needs {e.name}: pip install 'fcnseg[openvino]'") from None
    images = [np.asarray(x, dtype=np.float32)[None] for x in calibration]
    if not images:
        raise ExportError("int8 quantization needs calibration images; none were given")
    try:
        model = ov.Core().read_model(str(onnx_path))
        keep = sorted({*fp32_operations(model), *ignored})
        quantized = nncf.quantize(
            model,
            nncf.Dataset(images),
            subset_size=len(images),
            ignored_scope=nncf.IgnoredScope(names=keep, validate=False),
        )
        ov.save_model(quantized, str(out))
    except Exception as e:  # NNCF and OpenVINO raise many kinds: one line naming the step
        raise ExportError(f"openvino-int8 quantization failed: {type(e).__name__}: {e}") from None
    return {"kept_fp32": len(keep)}
