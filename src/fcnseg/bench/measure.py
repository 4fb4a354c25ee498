"""Inference benchmark against the machine's own limit: FLOPs, GEMM floor, latency, peak memory.

For each model: FLOPs of one forward pass (``torch.utils.flop_counter``, multiply-add = 2 FLOPs), the
machine's GEMM rate per precision measured in the same run (:mod:`fcnseg.floors`), the floor ``FLOPs / GEMM
rate``, the median latency over repeated runs, the achieved GFLOP/s, the ratio to the floor and the peak RSS. Each
model × path runs in its own child process, so its peak RSS is its own and one model's allocations do not slow
the next. Exported engines are measured in a process that imports NumPy and their runtime only (:mod:`.child`),
as a deployment process runs the graph (importing torch alone costs about 0.5 GB of RSS). ``auto`` is measured
as a user meets it after ``fcnseg tune``: one process decides (every eligible engine timed, the decision kept in a
temporary ``FCNSEG_HOME``), a second reads the decision and times the chosen engine.

A path whose optional dependency is missing is skipped with one line naming the extra to install.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..errors import FCNError
from ..inference.engines import ENGINES
from . import VARIANTS

__all__ = [
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
]

#: paths measured in a PyTorch process (the variants and the PyTorch engines)
_TORCH_PATHS = (*VARIANTS, *(n for n, e in ENGINES.items() if not e.exported))


def missing_extra(path: str) -> str | None:
    """``"needs X: pip install 'fcnseg[extra]'"`` when a path's optional dependency is missing, else None."""
    from ..inference.engines import missing_extra as engine_missing

    return engine_missing(path) if path in ENGINES else None


def gemm_rates(n: int = 2048, repeats: int = 9) -> dict[str, float]:
    """The machine's fp32 GEMM rate (GFLOP/s) per library (:func:`fcnseg.floors.gemm_rates` in fp32).

    They differ by up to 2× on one machine: MKL's x86 dispatch runs well below the hardware's peak on AMD
    CPUs (measured on a 2-core AMD EPYC: torch.mm 217, oneDNN 418, onnxruntime 472 GFLOP/s).
    """
    from ..floors import gemm_rates as rates

    return rates(n, repeats, "fp32")


def gemm_gflops(n: int = 2048, repeats: int = 9) -> float:
    """The machine's fp32 GEMM rate (GFLOP/s): the best library's rate from :func:`gemm_rates`."""
    return max(gemm_rates(n, repeats).values())


def _timings(fn: Callable[[], Any], repeats: int) -> list[float]:
    """Seconds of ``repeats`` calls of ``fn``, after one warm-up call (allocator, primitive and weight caches)."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def build(name: str, num_classes: int = 21) -> torch.nn.Module:
    """A registered fcnseg model (random weights: speed does not depend on them), or torchvision's FCN."""
    if name == "tv_fcn_resnet50":
        from torchvision.models.segmentation import fcn_resnet50

        net = fcn_resnet50(weights=None, weights_backbone=None, num_classes=num_classes, aux_loss=False)

        class _Out(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.net = net

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return self.net(x)["out"]

        return _Out().eval()
    from ..models import get_model

    return get_model(name, num_classes=num_classes).eval()


def prepare(name: str, kind: str, out: str, size: int, onnx: str = "") -> None:
    """Write the graph ``kind`` (``onnx``, ``onnx-int8``, ``openvino-int8`` from the fp32 ``onnx``) an exported path
    runs, in its own process (the export's memory must not count in the measured process's peak); print the model's
    GFLOP."""
    print(json.dumps({"gflop": count_gflop(name, size)}))
    if kind == "openvino-int8":
        from ..export.openvino_int8 import quantize_openvino

        quantize_openvino(onnx, out, _calibration(size))
        return
    model = build(name)
    if kind == "onnx-int8":
        from ..export.int8 import quantize_int8

        quantize_int8(model, out, _calibration(size))
    else:
        from ..export import export_onnx

        export_onnx(model, out, check_sizes=((64, 64),), external_data=True)


def _calibration(size: int) -> list[torch.Tensor]:
    """Four synthetic scenes of ``size`` px, preprocessed as the reference nets take them (int8 calibration)."""
    from ..data import SyntheticShapes, eval_transforms
    from ..preprocessing import CAFFE_VOC

    calib = SyntheticShapes(8, size, "train", transforms=eval_transforms(CAFFE_VOC))
    return [calib[i][0] for i in range(4)]


def count_gflop(name: str, size: int) -> float:
    """GFLOP of one forward pass at ``size``×``size`` (on the meta device: shapes only, no weights)."""
    with torch.device("meta"):
        return model_gflop(build(name), size)


def model_gflop(model: torch.nn.Module, size: int) -> float:
    """GFLOP of one forward pass of ``model`` (eval mode) on a ``size``×``size`` RGB image, on its own device."""
    from torch.utils.flop_counter import FlopCounterMode

    device = next(model.parameters()).device
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model.eval()(torch.zeros(1, 3, size, size, device=device))
    return counter.get_total_flops() / 1e9


def measure(name: str, path: str = "torch", size: int = 500, repeats: int = 5, device: str = "cpu") -> dict[str, float]:
    """A PyTorch path (torch, torch-bf16, torch-fp16, channels_last, compiled) in this process (``run`` isolates it in
    a child).

    On CUDA each timed call ends with ``torch.cuda.synchronize()`` (the GPU's time, not the launch's).
    """
    if path not in _TORCH_PATHS:
        raise ValueError(f"the {path} path is measured by run() in its own runtime's process")
    gflop = count_gflop(name, size)
    dev = torch.device(device)
    x = torch.randn(1, 3, size, size, device=dev)
    model = build(name).to(dev)
    forward: Callable[[], Any] = lambda: model(x)  # noqa: E731
    if path in VARIANTS:  # channels_last (+ torch.compile, frozen)
        from ..inference.fast import optimize_for_inference

        fast: Any = optimize_for_inference(model, device=dev, dtype=None, compile=path == "compiled")
        forward = lambda: fast(x)  # noqa: E731
    elif path != "torch":
        from ..inference.engines import build_runner

        fast = build_runner(path, model, device=dev)  # torch-bf16: a bf16 copy on CPUs
        forward = lambda: fast(x)  # noqa: E731
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    step = lambda: (forward(), sync())  # noqa: E731
    with torch.inference_mode():
        times = _timings(step, repeats)
    latency = statistics.median(times)
    return {"gflop": gflop, "latency_s": latency, "gflops_per_s": gflop / latency, "peak_rss_mb": peak_rss_mb()}


def peak_rss_mb() -> float:
    """This process's peak resident memory (MB): ``VmHWM``, which starts afresh at ``exec``.

    ``getrusage``'s ``ru_maxrss`` does not: a child started by a large parent reports the parent's
    size at the fork as its own floor.
    """
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(module: str, *argv: str, env: dict[str, str] | None = None) -> str:
    """Run ``python -m module ARGV`` (a benchmark process of its own); its standard output."""
    import os

    proc = subprocess.run(
        [sys.executable, "-m", module, *argv], capture_output=True, text=True, env={**os.environ, **(env or {})}
    )
    if proc.returncode:
        raise FCNError(f"a benchmark process failed (exit {proc.returncode}): {proc.stderr.strip()[-1500:]}")
    return proc.stdout


def cuda_gemm_gflops(device: torch.device, n: int = 8192, repeats: int = 9) -> float:
    """fp32 GEMM rate of a CUDA device (TF32 off, as the fp32 paths run), best of ``repeats``."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        best = min(_timings(lambda: (torch.mm(a, b), torch.cuda.synchronize(device)), repeats))
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before
    return 2 * n**3 / best / 1e9


def measure_auto(name: str, size: int, repeats: int, weights: str, phase: str = "run") -> dict[str, Any]:
    """The ``auto`` path in two processes, as a user meets it after ``fcnseg tune``: ``phase="decide"`` writes the
    model's weights to ``weights`` and times every eligible engine (the decision kept in ``FCNSEG_HOME``);
    ``phase="run"`` reads the cached decision, then times the chosen engine (its peak RSS is the steady state's)."""
    from dataclasses import asdict

    from safetensors.torch import load_file, save_file

    from ..inference.auto import AutoEngine

    torch.manual_seed(0)
    path = Path(weights)
    if phase == "decide":
        model = build(name)
        if not path.is_file():
            save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
        model.load_state_dict(load_file(str(path)))
    else:  # built on the meta device and given the file's tensors: one copy of the weights, as a server holds
        with torch.device("meta"):
            model = build(name)
        model.load_state_dict(load_file(str(path)), assign=True)
    auto = AutoEngine(model, device=torch.device("cpu"), source=path, engine="auto", reloadable=True)
    x = torch.randn(1, 3, size, size)
    with torch.inference_mode():
        if phase == "decide":
            (decision,) = auto.tune([(size, size)])
            return {"engine": decision.engine, "decision": asdict(decision)}
        auto.expect(1000)  # a long job, as a server's steady state: the cached decision repays loading its engine
        auto(x)  # the first input consults the decision `fcnseg tune` cached (engine_for alone never looks)
        engine = auto.engine_for(x)
        runner = auto.runner(engine)
        latency = statistics.median(_timings(lambda: runner(x), repeats))
    gflop = count_gflop(name, size)
    return {
        "engine": engine,
        "gflop": gflop,
        "latency_s": latency,
        "gflops_per_s": gflop / latency,
        "peak_rss_mb": peak_rss_mb(),
    }


def _main(argv: list[str]) -> int:
    """``python -m fcnseg.bench.measure FUNCTION ARGS_JSON``: one measurement in a process of its own."""
    function, args = argv[0], json.loads(argv[1])
    result = globals()[function](*args)
    if result is not None:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
