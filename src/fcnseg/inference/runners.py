"""How each engine of :mod:`fcnseg.inference.engines` is built: ``build_NAME(model, *, device, store, calibration)``.

PyTorch engines wrap the model. Exported engines take their graph from the model file's entry in the cache
(:class:`~fcnseg.inference.store.GraphStore`), made there by a child process (:mod:`.build_child`: an export, a
quantization), and are probed once per machine in a child before this process loads them: a runtime that would
crash (out of memory, an address-space limit) fails there, with a one-line reason, instead of here.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ExportError
from .build_child import run_child
from .store import GraphStore

__all__ = [
    "CastModel",
    "build_onnxruntime",
    "build_onnxruntime_int8",
    "build_openvino",
    "build_openvino_bf16",
    "build_openvino_int8",
    "build_torch",
    "build_torch_bf16",
    "build_torch_fp16",
    "exported_graph",
]

Calibration = Callable[[], list[torch.Tensor]] | None


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


def build_torch(model: nn.Module, **_: Any) -> nn.Module:
    return model


def build_torch_bf16(model: nn.Module, *, device: torch.device, **_: Any) -> nn.Module:
    if device.type == "cpu":
        return CastModel(model, torch.bfloat16)
    from .fast import optimize_for_inference

    return optimize_for_inference(model, device=device, dtype="bfloat16")


def build_torch_fp16(model: nn.Module, *, device: torch.device, **_: Any) -> nn.Module:
    from .fast import optimize_for_inference

    return optimize_for_inference(model, device=device, dtype="float16")


# -- exported engines ---------------------------------------------------------------------------------------------


def _interface(model: nn.Module) -> dict[str, Any]:
    """What an exported graph must fit: the net's inputs, heads and build arguments."""
    from ..export.runtime import graph_io

    return {**asdict(graph_io(model)), "build_args": getattr(model, "build_args", None)}


def _spec(model: nn.Module, store: GraphStore) -> dict[str, Any]:
    return {"arch": model.arch, "kwargs": dict(model.build_args), "file": str(store.file)}


def _calibration_file(calibration: Calibration, folder: Path) -> str:
    """The calibration images (``(C, H, W)`` each, any sizes) as one ``.npz`` for a child process."""
    import numpy as np

    images = list(calibration()) if calibration is not None else []
    if not images:
        raise ExportError(
            "int8 needs calibration images: give a folder (--calibration) or use a checkpoint whose "
            "training data is on disk"
        )
    path = folder / "calibration.npz"
    np.savez(path, *(x.float().numpy() for x in images))
    return str(path)


def exported_graph(kind: str, model: nn.Module, store: GraphStore, calibration: Calibration = None) -> Path:
    """The cached graph ``kind`` (``onnx``, ``onnx-int8``, ``openvino-int8``) of ``model``'s file, made if needed."""
    interface = _interface(model)

    def make(out: Path) -> str:
        spec = {**_spec(model, store), "out": str(out)}
        with tempfile.TemporaryDirectory() as tmp:
            if kind != "onnx":
                spec["calibration"] = _calibration_file(calibration, Path(tmp))
            if kind == "openvino-int8":
                spec["onnx"] = str(exported_graph("onnx", model, store))
            return str(run_child("export" if kind == "onnx" else kind, spec)["main"])

    return store.graph(kind, interface, make)


def _probed(engine: str, graph: Path, store: GraphStore, shape: tuple[int, ...], **extra: Any) -> None:
    """Run ``graph`` once in a child (per machine, engine and graph) before this process loads it; a graph exported
    with a reference output (``reference.npz``) must give it at full precision there.

    Raises:
        ExportError: the probe failed now or on an earlier run on this machine (the reason is kept).
    """
    from ..runtime.hardware import fingerprint

    key = f"{fingerprint()['id']}/{engine}/{graph.parent.name}"
    known = store.read("probes.json").get(key)
    if isinstance(known, dict):
        if known.get("ok"):
            return
        raise ExportError(f"{engine}: failed its probe on this machine earlier ({known.get('reason', '?')})")
    reference = graph.parent / "reference.npz"  # an fp32 graph's PyTorch output: the probe checks against it
    if reference.is_file():
        extra["reference"] = str(reference)
    try:
        run_child("probe", {"engine": engine, "graph": str(graph), "shape": list(shape), **extra}, timeout=900)
        result: dict[str, Any] = {"ok": True}
    except ExportError as e:
        result = {"ok": False, "reason": str(e)}
    with store.update("probes.json") as probes:
        probes[key] = result
    if not result["ok"]:
        raise ExportError(f"{engine}: {result['reason']}")


#: the shape the probe runs (small: it tests that the runtime loads and runs the graph here, not a size)
PROBE_SHAPE = (1, 3, 64, 64)


def _onnx_module(engine: str, kind: str, model: nn.Module, store: GraphStore, calibration: Calibration) -> nn.Module:
    from ..export.int8 import OnnxModule

    graph = exported_graph(kind, model, store, calibration)
    _probed(engine, graph, store, (1, model.in_channels, *PROBE_SHAPE[2:]))
    return OnnxModule(graph, model)


def build_onnxruntime(model: nn.Module, *, store: GraphStore, calibration: Calibration = None, **_: Any) -> nn.Module:
    return _onnx_module("onnxruntime", "onnx", model, store, calibration)


def build_onnxruntime_int8(
    model: nn.Module, *, store: GraphStore, calibration: Calibration = None, **_: Any
) -> nn.Module:
    return _onnx_module("onnxruntime-int8", "onnx-int8", model, store, calibration)


def _openvino(
    engine: str, kind: str, hint: str, model: nn.Module, store: GraphStore, calibration: Calibration
) -> nn.Module:
    from ..export.openvino import OpenVinoModule

    graph = exported_graph(kind, model, store, calibration)
    _probed(engine, graph, store, (1, model.in_channels, *PROBE_SHAPE[2:]), hint=hint)
    return OpenVinoModule(graph, model, precision=hint)


def build_openvino(model: nn.Module, *, store: GraphStore, calibration: Calibration = None, **_: Any) -> nn.Module:
    return _openvino("openvino", "onnx", "f32", model, store, calibration)


def build_openvino_bf16(model: nn.Module, *, store: GraphStore, calibration: Calibration = None, **_: Any) -> nn.Module:
    return _openvino("openvino-bf16", "onnx", "bf16", model, store, calibration)


def build_openvino_int8(model: nn.Module, *, store: GraphStore, calibration: Calibration = None, **_: Any) -> nn.Module:
    return _openvino("openvino-int8", "openvino-int8", "f32", model, store, calibration)
