"""The inference engines × precisions fcnseg can run a model on: one record per engine, read by ``--engine``'s
choices and help, ``auto``, ``fcnseg bench`` and the docs (a test checks the docs' table against it).

Plain data, no torch: the command line lists the engines without importing it. Each record names the module and
function that builds its runner (:mod:`fcnseg.inference.runners`); every runner takes ``(N, C, H, W)`` float
tensors and returns fp32 scores like the model (a dict per head for multi-head nets). Exported engines run a graph
exported from a checkpoint file and kept in ``FCNSEG_HOME`` (:mod:`fcnseg.inference.store`).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    import torch

__all__ = [
    "ENGINES",
    "GRAPH_KIND",
    "Engine",
    "build_runner",
    "default_engine",
    "eligible",
    "engine_names",
    "missing_extra",
    "unavailable",
]


@dataclass(frozen=True)
class Engine:
    """One engine: its name, arithmetic, what it runs, where, and what it needs."""

    name: str
    precision: str  # fp32 | bf16 | fp16 | int8
    summary: str  # one line for --help and the docs
    builder: str  # "function" in fcnseg.inference.runners that builds its runner
    devices: tuple[str, ...] = ("cpu",)
    extra: str | None = None  # the fcnseg extra that installs its libraries
    modules: tuple[str, ...] = ()  # the libraries it imports
    exported: bool = False  # runs a graph exported from a checkpoint file

    def build(self, *args: Any, **kwargs: Any) -> Any:
        """Its runner (:mod:`fcnseg.inference.runners`, imported here, not before)."""
        function: Callable[..., Any] = getattr(importlib.import_module(".runners", __package__), self.builder)
        return function(*args, **kwargs)


_ORT = ("onnx", "onnxruntime", "onnxscript")
_OV = ("onnx", "onnxscript", "openvino")
ENGINES: dict[str, Engine] = {
    e.name: e
    for e in (
        Engine(
            "torch",
            "fp32",
            "the model as given (PyTorch eager): the reference numerics",
            "build_torch",
            devices=("cpu", "cuda", "mps"),
        ),
        Engine(
            "torch-bf16",
            "bf16",
            "PyTorch in bf16: a bf16 channels-last copy on CPUs with bf16 units, autocast on GPUs",
            "build_torch_bf16",
            devices=("cpu", "cuda"),
        ),
        Engine(
            "torch-fp16", "fp16", "PyTorch fp16 autocast (GPUs without bf16)", "build_torch_fp16", devices=("cuda",)
        ),
        Engine(
            "onnxruntime",
            "fp32",
            "the exported graph on onnxruntime's CPU provider",
            "build_onnxruntime",
            extra="onnx",
            modules=_ORT,
            exported=True,
        ),
        Engine(
            "onnxruntime-int8",
            "int8",
            "onnxruntime static int8 quantization (QDQ, per-channel weights)",
            "build_onnxruntime_int8",
            extra="onnx",
            modules=_ORT,
            exported=True,
        ),
        Engine(
            "openvino",
            "fp32",
            "the exported graph compiled by OpenVINO",
            "build_openvino",
            extra="openvino",
            modules=_OV,
            exported=True,
        ),
        Engine(
            "openvino-bf16",
            "bf16",
            "OpenVINO with its bf16 precision hint (CPUs with bf16 units)",
            "build_openvino_bf16",
            extra="openvino",
            modules=_OV,
            exported=True,
        ),
        Engine(
            "openvino-int8",
            "int8",
            "OpenVINO with NNCF post-training int8 quantization (CPUs with VNNI/AMX)",
            "build_openvino_int8",
            extra="openvino",
            modules=(*_OV, "nncf"),
            exported=True,
        ),
    )
}

#: exported engine → the kind of graph it is made from in the engine cache (a cached graph makes it cheap to load)
GRAPH_KIND = {
    "onnxruntime": "onnx",
    "openvino": "onnx",
    "openvino-bf16": "onnx",
    "onnxruntime-int8": "onnx-int8",
    "openvino-int8": "openvino-int8",
}


def engine_names() -> tuple[str, ...]:
    """Every engine a user can force with ``--engine NAME`` (``auto`` chooses among them)."""
    return tuple(ENGINES)


def _checked(name: str) -> Engine:
    if name not in ENGINES:
        raise ConfigError(f"engine {name!r}: choose auto or one of {', '.join(ENGINES)}")
    return ENGINES[name]


def default_engine() -> str:
    """``auto``, or the engine named by the environment variable ``FCNSEG_ENGINE`` (checked)."""
    name = os.environ.get("FCNSEG_ENGINE", "auto") or "auto"
    if name != "auto" and name not in ENGINES:
        raise ConfigError(f"FCNSEG_ENGINE={name!r}: choose auto or one of {', '.join(ENGINES)}")
    return name


def missing_extra(name: str) -> str | None:
    """Which libraries an engine lacks, with the extra that installs them; None when all are there."""
    engine = _checked(name)
    missing = [m for m in engine.modules if importlib.util.find_spec(m) is None]
    return f"needs {', '.join(missing)}: pip install 'fcnseg[{engine.extra}]'" if missing else None


def unavailable(name: str, device: torch.device, *, exportable: bool) -> str | None:
    """Why engine ``name`` cannot run here (one phrase), or None when it can (forced use; no speed judgement).

    ``exportable``: the model came from a file its graph can be exported from (a checkpoint or weights file).
    """
    engine = _checked(name)
    if device.type not in engine.devices:
        return f"runs on {' or '.join(engine.devices)}, not {device.type}"
    if engine.name == "torch-bf16" and device.type == "cuda":
        import torch

        if not torch.cuda.is_bf16_supported():
            return "this GPU has no bf16"
    if engine.exported and not exportable:
        return "runs a graph exported from a checkpoint file; this model came without one"
    return missing_extra(name)


def eligible(name: str, device: torch.device, *, exportable: bool) -> str | None:
    """Why ``auto`` does not try engine ``name`` here, or None: it also needs its precision's hardware units."""
    from ..runtime.hardware import has_bf16_units, has_int8_units

    reason = unavailable(name, device, exportable=exportable)
    if reason or device.type != "cpu":
        return reason
    precision = ENGINES[name].precision
    if precision == "bf16" and not has_bf16_units():
        return "no bf16 units on this CPU (emulated bf16 is slower than fp32)"
    if precision == "int8" and not has_int8_units():
        return "no int8 dot-product units (VNNI/AMX) on this CPU"
    return None


def build_runner(
    name: str,
    model: Any,
    *,
    device: torch.device,
    store: Any = None,
    calibration: Callable[[], list[Any]] | None = None,
) -> Any:
    """A module running ``model`` on engine ``name`` (exported graphs come from ``store``).

    Raises:
        ConfigError: the engine cannot run here (the reason, with the extra to install when one is missing).
    """
    reason = unavailable(name, device, exportable=store is not None)
    if reason:
        raise ConfigError(f"--engine {name}: {reason}")
    return ENGINES[name].build(model, device=device, store=store, calibration=calibration)
