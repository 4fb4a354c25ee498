"""The machine's GEMM rate per precision and library: the floor each inference path is measured against.

A convolution lowered to GEMM cannot beat the best square GEMM the machine runs in the same precision,
so ``FLOPs / rate`` is a path's floor. Libraries differ by up to 2× on one machine (MKL's x86 dispatch
runs well below peak on AMD CPUs; AMX needs oneDNN's or OpenVINO's kernels), so each precision's rate is
the best of the libraries installed:

- **fp32**: ``torch.mm`` (MKL on the PyPI wheels), a 1×1 channels-last convolution (oneDNN, what PyTorch's
  convolutions run on), onnxruntime's ``MatMul`` (MLAS), OpenVINO's ``MatMul``;
- **bf16**: the same in bf16 (oneDNN with AMX-BF16 / AVX512-BF16 where present), OpenVINO with its bf16 hint;
- **int8**: ``torch._int_mm`` (int8 × int8 → int32) and onnxruntime's ``MatMulInteger`` (u8 × s8, what its
  QDQ int8 convolutions run on; VNNI / AMX-INT8).
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["PRECISIONS", "floors", "gemm_rates"]

PRECISIONS = ("fp32", "bf16", "int8")


def _best(fn: Callable[[], Any], repeats: int) -> float:
    """The fastest of ``repeats`` calls (seconds), after one warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _torch_rates(n: int, precision: str, repeats: int) -> dict[str, float]:
    flop = 2 * n**3
    if precision == "int8":
        a = torch.randint(-128, 127, (n, n), dtype=torch.int8)
        b = torch.randint(-128, 127, (n, n), dtype=torch.int8)
        try:
            return {"torch._int_mm": flop / _best(lambda: torch._int_mm(a, b), repeats) / 1e9}
        except RuntimeError:  # no int8 GEMM in this torch build for this CPU
            return {}
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    rates = {"torch.mm": flop / _best(lambda: torch.mm(a, b), repeats) / 1e9}
    x = torch.randn(1, n, max(n // 64, 1), 64, dtype=dtype).contiguous(memory_format=torch.channels_last)
    w = torch.randn(n, n, 1, 1, dtype=dtype).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        conv_flop = 2 * n * n * x.shape[2] * x.shape[3]
        rates["oneDNN"] = conv_flop / _best(lambda: torch.nn.functional.conv2d(x, w), repeats) / 1e9
    return rates


def _onnxruntime_rate(n: int, precision: str, repeats: int) -> dict[str, float]:
    if precision == "bf16" or any(importlib.util.find_spec(m) is None for m in ("onnx", "onnxruntime")):
        return {}
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    if precision == "int8":
        node, a_type, c_type = "MatMulInteger", TensorProto.UINT8, TensorProto.INT32
        a = rng.integers(0, 255, (n, n), dtype=np.uint8)
        b = rng.integers(-128, 127, (n, n), dtype=np.int8)
    else:
        node, a_type, c_type = "MatMul", TensorProto.FLOAT, TensorProto.FLOAT
        a, b = rng.standard_normal((n, n), np.float32), rng.standard_normal((n, n), np.float32)
    graph = helper.make_graph(
        [helper.make_node(node, ["A", "B"], ["C"])],
        "gemm",
        [helper.make_tensor_value_info("A", a_type, [n, n])],
        [helper.make_tensor_value_info("C", c_type, [n, n])],
        [numpy_helper.from_array(b, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return {"onnxruntime": 2 * n**3 / _best(lambda: session.run(None, {"A": a}), repeats) / 1e9}


def _openvino_rate(n: int, precision: str, repeats: int) -> dict[str, float]:
    if precision == "int8" or importlib.util.find_spec("openvino") is None:
        return {}
    import numpy as np
    import openvino as ov
    from openvino import opset13 as ops

    rng = np.random.default_rng(0)
    a = ops.parameter([n, n], np.float32, name="A")
    model = ov.Model([ops.matmul(a, ops.constant(rng.standard_normal((n, n), np.float32)), False, False)], [a])
    hint = "bf16" if precision == "bf16" else "f32"
    compiled = ov.Core().compile_model(
        model,
        "CPU",
        {
            "INFERENCE_PRECISION_HINT": hint,
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": torch.get_num_threads(),
        },
    )
    feed = rng.standard_normal((n, n), np.float32)
    return {"openvino": 2 * n**3 / _best(lambda: compiled(feed), repeats) / 1e9}


def gemm_rates(n: int = 2048, repeats: int = 9, precision: str = "fp32") -> dict[str, float]:
    """GFLOP/s of an ``n×n @ n×n`` product in ``precision``, per installed library (the best of ``repeats``)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: one of {', '.join(PRECISIONS)}")
    rates = _torch_rates(n, precision, repeats)
    rates.update(_onnxruntime_rate(n, precision, repeats))
    rates.update(_openvino_rate(n, precision, repeats))
    return rates


def floors(n: int = 2048, repeats: int = 9) -> dict[str, dict[str, Any]]:
    """``{precision: {"gflops": best rate, "library": its library, "by_library": {…}}}`` for fp32, bf16, int8."""
    out: dict[str, dict[str, Any]] = {}
    for precision in PRECISIONS:
        rates = gemm_rates(n, repeats, precision)
        if rates:
            library = max(rates, key=rates.__getitem__)
            out[precision] = {"gflops": rates[library], "library": library, "by_library": rates}
    return out
