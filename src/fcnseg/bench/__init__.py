"""``fcnseg bench``: inference speed against the machine's own limit (FLOPs, GEMM floors, latency, peak memory).

The paths are the inference engines of :data:`fcnseg.inference.engines.ENGINES` (each in its own process), two
PyTorch variants that are not engines (``channels_last``, ``compiled``: :func:`fcnseg.inference.optimize_for_inference`
without and with ``torch.compile``) and ``auto`` (what ``--engine auto`` runs here once it has decided). Names are
importable without torch (the command line lists them); the measuring code is :mod:`.measure`, and the processes
that run an exported graph without torch are :mod:`.child`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes
from ..inference.engines import ENGINES

if TYPE_CHECKING:
    from .measure import (
        build,
        count_gflop,
        gemm_gflops,
        gemm_rates,
        measure,
        measure_auto,
        missing_extra,
        model_gflop,
        peak_rss_mb,
        prepare,
        run,
        table,
    )

#: the models of ``fcnseg bench`` by default (``tv_fcn_resnet50`` = torchvision's own FCN, for comparison)
MODELS = ("fcn8s_vgg16", "fcn32s_vgg16", "fcn32s_alexnet", "fcn8s_resnet50", "tv_fcn_resnet50")
#: PyTorch variants measured beside the engines (not engines: ``auto`` does not choose them)
VARIANTS = ("channels_last", "compiled")
#: every path: the engines, the variants, and auto
PATHS = (*ENGINES, *VARIANTS, "auto")
#: each path's arithmetic (``auto``: that of the engine it chose)
PRECISION = {**{name: e.precision for name, e in ENGINES.items()}, **dict.fromkeys(VARIANTS, "fp32")}
#: the paths ``fcnseg bench`` measures by default
DEFAULT_PATHS = ("torch", "torch-bf16", "onnxruntime", "onnxruntime-int8", "openvino-bf16", "openvino-int8", "auto")

__all__ = [
    "DEFAULT_PATHS",
    "MODELS",
    "PATHS",
    "PRECISION",
    "VARIANTS",
    "build",
    "count_gflop",
    "gemm_gflops",
    "gemm_rates",
    "measure",
    "measure_auto",
    "missing_extra",
    "model_gflop",
    "peak_rss_mb",
    "prepare",
    "run",
    "table",
]

__getattr__, __dir__ = lazy_attributes(
    __name__,
    {"run": ".run", "table": ".run"}
    | dict.fromkeys(
        (
            "build",
            "count_gflop",
            "gemm_gflops",
            "gemm_rates",
            "measure",
            "measure_auto",
            "missing_extra",
            "model_gflop",
            "peak_rss_mb",
            "prepare",
        ),
        ".measure",
    ),
)
