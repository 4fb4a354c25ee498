"""Inference benchmark against the machine's own limit: FLOPs, GEMM floor, latency, peak memory.

For each model: FLOPs of one forward pass (``torch.utils.flop_counter``, multiply-add = 2 FLOPs), the
machine's fp32 GEMM rate measured in the same run (large square ``torch.mm``, the best a convolution
lowered to GEMM can do), the floor ``FLOPs / GEMM rate``, the median latency over repeated runs, the
achieved GFLOP/s, the ratio to the floor and the peak RSS. Each model runs in its own child process,
so its peak RSS is its own and one model's allocations do not slow the next. The onnxruntime paths are
measured in a process that imports onnxruntime and NumPy only, as a deployment process runs the exported
graph (importing torch alone costs about 0.5 GB of RSS).

Paths: ``eager`` (PyTorch eager, NCHW fp32, the baseline); ``channels_last`` and ``compiled``
(:func:`fcnseg.inference.optimize_for_inference` without and with ``torch.compile``); ``fast``
(fcnseg's fp32 CPU path: the exported graph, grouped bilinear upsampling, run by onnxruntime, which
prepacks every weight once and fuses bias and ReLU into its GEMMs); ``int8`` (onnxruntime static
quantization, :mod:`fcnseg.export.int8`).
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .errors import FCNError, ModelError

__all__ = ["MODELS", "PATHS", "build", "count_gflop", "gemm_gflops", "gemm_rates", "measure", "prepare", "run", "table"]

#: the models of ``fcnseg bench`` by default (``tv_fcn_resnet50`` = torchvision's own FCN, for comparison)
MODELS = ("fcn8s_vgg16", "fcn32s_vgg16", "fcn32s_alexnet", "fcn8s_resnet50", "tv_fcn_resnet50")
PATHS = ("eager", "channels_last", "compiled", "fast", "int8")


def gemm_rates(n: int = 2048, repeats: int = 9) -> dict[str, float]:
    """The machine's fp32 GEMM rate (GFLOP/s) per library: the best of ``repeats`` ``n×n @ n×n`` products.

    ``torch.mm`` (the BLAS torch was built with: MKL for the PyPI wheels), a 1×1 convolution of the same
    size in oneDNN (what PyTorch's convolutions run on), and onnxruntime's ``MatMul`` (MLAS, which runs
    fcnseg's fast path) when onnxruntime is installed. They differ by up to 2× on one machine: MKL's
    x86 dispatch runs well below the hardware's peak on AMD CPUs (measured on a 2-core AMD EPYC:
    torch.mm 217, oneDNN 418, onnxruntime 472 GFLOP/s). The hardware's limit is the best of them.
    """
    flop = 2 * n**3
    a, b = torch.randn(n, n), torch.randn(n, n)
    rates = {"torch.mm": flop / min(_timings(lambda: torch.mm(a, b), repeats)) / 1e9}
    x = torch.randn(1, n, max(n // 64, 1), 64).contiguous(memory_format=torch.channels_last)
    w = torch.randn(n, n, 1, 1).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        conv_flop = 2 * n * n * x.shape[2] * x.shape[3]
        rates["oneDNN"] = conv_flop / min(_timings(lambda: torch.nn.functional.conv2d(x, w), repeats)) / 1e9
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        return rates
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["A", "B"], ["C"])],
        "gemm",
        [helper.make_tensor_value_info("A", TensorProto.FLOAT, [n, n])],
        [helper.make_tensor_value_info("C", TensorProto.FLOAT, [n, n])],
        [numpy_helper.from_array(b.numpy(), "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feed = {"A": a.numpy()}
    rates["onnxruntime"] = flop / min(_timings(lambda: session.run(None, feed), repeats)) / 1e9
    return rates


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
    import fcnseg

    return fcnseg.get_model(name, num_classes=num_classes).eval()


def prepare(name: str, path: str, out: str, size: int) -> None:
    """Write the ONNX file the ``fast`` (fp32) or ``int8`` path runs (in its own process: the export's
    memory must not count in the measured process's peak); print the model's GFLOP."""
    print(json.dumps({"gflop": count_gflop(name, size)}))
    model = build(name)
    if path == "int8":
        from .data import SyntheticShapes
        from .data.transforms import eval_transforms
        from .export.int8 import quantize_int8
        from .preprocessing import CAFFE_VOC

        calib = SyntheticShapes(8, size, "train", transforms=eval_transforms(CAFFE_VOC))
        quantize_int8(model, out, (calib[i][0] for i in range(4)))
    else:
        from .export import export_onnx

        export_onnx(model, out, check_sizes=((64, 64),), external_data=True)


def count_gflop(name: str, size: int) -> float:
    """GFLOP of one forward pass at ``size``×``size`` (on the meta device: shapes only, no weights)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"), FlopCounterMode(display=False) as counter:
        build(name)(torch.zeros(1, 3, size, size, device="meta"))
    return counter.get_total_flops() / 1e9


#: the ``fast``/``int8`` measurement: onnxruntime and NumPy only, as a deployment process runs the graph
#: (importing torch alone adds ~0.5 GB of RSS here, which is not the model's)
_ORT_CHILD = """
import json, resource, statistics, sys, time
import numpy as np, onnxruntime as ort
path, size, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
opts = ort.SessionOptions()
opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
feed = {session.get_inputs()[0].name: np.random.default_rng(0).standard_normal((1, 3, size, size), np.float32)}
session.run(None, feed)
times = []
for _ in range(repeats):
    t = time.perf_counter()
    session.run(None, feed)
    times.append(time.perf_counter() - t)
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"latency_s": statistics.median(times), "peak_rss_mb": hwm / 1024}))
"""


def measure(name: str, path: str = "eager", size: int = 500, repeats: int = 5, device: str = "cpu") -> dict[str, float]:
    """A PyTorch path (eager, channels_last, compiled) in this process (``run`` isolates it in a child).

    On CUDA each timed call ends with ``torch.cuda.synchronize()`` (the GPU's time, not the launch's).
    """
    if path not in ("eager", "channels_last", "compiled"):
        raise ValueError("the fast and int8 paths are measured by run() in an onnxruntime-only process")
    gflop = count_gflop(name, size)
    dev = torch.device(device)
    x = torch.randn(1, 3, size, size, device=dev)
    model = build(name).to(dev)
    forward: Callable[[], Any] = lambda: model(x)  # noqa: E731
    if path != "eager":  # fcnseg.inference.optimize_for_inference: channels_last (+ torch.compile, frozen)
        from .inference.fast import optimize_for_inference

        fast = optimize_for_inference(model, device=dev, dtype=None, compile=path == "compiled")
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


def _child(code: str, *argv: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True)
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


def run(
    models: tuple[str, ...] = MODELS,
    paths: tuple[str, ...] = ("eager", "fast"),
    size: int = 500,
    repeats: int = 5,
    device: str = "cpu",
) -> dict[str, Any]:
    """Every model × path in its own child process, with the GEMM rate measured in this run.

    On a CUDA ``device`` the PyTorch paths run there against the GPU's fp32 GEMM rate; the onnxruntime
    paths (fast, int8) are CPU paths and are refused.
    """
    from .models import list_models

    unknown = [m for m in models if m not in (*list_models(), "tv_fcn_resnet50")]
    if unknown:
        raise ModelError(f"unknown model(s) {', '.join(unknown)}; see `fcnseg list`, or tv_fcn_resnet50")
    dev = torch.device(device)
    if dev.type == "cuda":
        cpu_only = [p for p in paths if p in ("fast", "int8")]
        if cpu_only:
            raise ModelError(f"--paths {' '.join(cpu_only)}: onnxruntime CPU paths; on CUDA use eager, channels_last, "
                             "compiled (benchmarks/bench_gpu.py measures bf16, TF32 and batch 16)")  # fmt: skip
        rates = {"cuda torch.mm": cuda_gemm_gflops(dev)}
    else:
        rates = gemm_rates()
    gemm = max(rates.values())
    results: dict[str, Any] = {
        "size": size,
        "repeats": repeats,
        "gemm_gflops": gemm,
        "gemm_gflops_by_library": rates,
        "threads": torch.get_num_threads(),
        "device": str(dev),
        "torch": torch.__version__,
        "models": {},
    }
    tmp = tempfile.mkdtemp(prefix="fcnseg-bench-")
    for name in models:
        for path in paths:
            if path == "int8" and name == "tv_fcn_resnet50":
                continue
            if path in ("eager", "channels_last", "compiled"):
                out = _child(f"import json, fcnseg.bench as b; print(json.dumps(b.measure({name!r}, {path!r}, "
                             f"{size}, {repeats}, {str(dev)!r})))")  # fmt: skip
                r = json.loads(out.strip().splitlines()[-1])
            else:
                onnx = str(Path(tmp) / f"{name}-{path}.onnx")
                prep = _child(f"import fcnseg.bench as b; b.prepare({name!r}, {path!r}, {onnx!r}, {size})")
                r = json.loads(_child(_ORT_CHILD, onnx, str(size), str(repeats)).strip().splitlines()[-1])
                r["gflop"] = json.loads(prep.strip().splitlines()[0])["gflop"]
                r["gflops_per_s"] = r["gflop"] / r["latency_s"]
            r["floor_s"] = r["gflop"] / gemm
            r["ratio_to_floor"] = r["latency_s"] / r["floor_s"]
            results["models"][f"{name}/{path}"] = r
    return results


def table(results: dict[str, Any]) -> str:
    """The results as a Markdown table."""
    lines = [
        f"{results['size']}×{results['size']}, batch 1, fp32 unless int8, median of {results['repeats']}; "
        f"GEMM {results['gemm_gflops']:.0f} GFLOP/s on {results['threads']} threads (best of "
        + ", ".join(f"{k} {v:.0f}" for k, v in results.get("gemm_gflops_by_library", {}).items())
        + f"), torch {results['torch']}",
        "",
        "| model / path | GFLOP | latency (s) | GFLOP/s | floor (s) | ratio to floor | peak RSS (MB) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for key, r in results["models"].items():
        lines.append(f"| {key} | {r['gflop']:.1f} | {r['latency_s']:.3f} | {r['gflops_per_s']:.0f} | "
                     f"{r['floor_s']:.3f} | {r['ratio_to_floor']:.2f} | {r['peak_rss_mb']:.0f} |")  # fmt: skip
    return "\n".join(lines)
