"""OpenVINO runs of the exported ONNX graph (the ``openvino`` extra): fp32, or bf16 on CPUs with bf16 units.

OpenVINO compiles the graph for each input shape it meets (static shapes run faster than a dynamic one
on its CPU plugin); compiled shapes are kept per module (the last :data:`MAX_SHAPES`), and its own model
cache (``CACHE_DIR``, beside the checkpoint) makes a later process skip the compile.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError, ExportError
from .runtime import RuntimeModule

__all__ = ["MAX_SHAPES", "OpenVinoModule", "require_openvino"]

#: compiled input shapes kept per module
MAX_SHAPES = 4


def require_openvino() -> Any:
    """The ``openvino`` module, or a one-line error naming the extra to install."""
    try:
        import openvino
    except ImportError:
        raise ConfigError("the openvino engine needs OpenVINO: pip install 'fcnseg[openvino]'") from None
    return openvino


class OpenVinoModule(RuntimeModule):
    """An ONNX file compiled by OpenVINO behind the ``nn.Module`` interface (like ``OnnxModule``).

    Args:
        path: the exported graph (fcnseg's ``CKPT.onnx``).
        like: the FCN it came from (its heads and class count).
        precision: ``"f32"`` or ``"bf16"`` (OpenVINO's ``INFERENCE_PRECISION_HINT``).
        cache_dir: OpenVINO's compiled-model cache, or None.
    """

    def __init__(
        self,
        path: str | Path,
        like: nn.Module,
        *,
        precision: str = "f32",
        cache_dir: str | Path | None = None,
        threads: int | None = None,
    ) -> None:
        super().__init__(like)
        ov = require_openvino()
        self.path = Path(path)
        if precision not in ("f32", "bf16"):
            raise ConfigError(f"OpenVINO precision {precision!r}: use f32 or bf16")
        self.core = ov.Core()
        self.input_name = self._read(path).inputs[0].any_name  # checked now; re-read per new shape (below)
        self.config: dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": precision,
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": threads or torch.get_num_threads(),
        }
        if cache_dir is not None:
            self.config["CACHE_DIR"] = str(cache_dir)
        self.precision = precision
        self._compiled: OrderedDict[tuple[int, ...], Any] = OrderedDict()

    def _read(self, path: str | Path) -> Any:
        try:
            return self.core.read_model(str(path))
        except Exception as e:
            raise ExportError(f"{path}: OpenVINO cannot read it ({type(e).__name__}: {e})") from None

    def _for(self, shape: tuple[int, ...]) -> Any:
        if shape in self._compiled:
            self._compiled.move_to_end(shape)
            return self._compiled[shape]
        # read afresh and dropped after compiling: keeping the fp32 graph alive would hold a second copy of the
        # weights (0.54 GB for fcn8s_vgg16) beside the compiled bf16 one for the life of the module
        graph = self._read(self.path)
        graph.reshape({self.input_name: list(shape)})
        compiled = self.core.compile_model(graph, "CPU", self.config)
        del graph
        self._compiled[shape] = compiled
        while len(self._compiled) > MAX_SHAPES:
            self._compiled.popitem(last=False)
        return compiled

    def run(self, x: Any) -> list[Any]:
        compiled = self._for(tuple(x.shape))
        result = compiled(x)
        return [result[out].copy() for out in compiled.outputs]
