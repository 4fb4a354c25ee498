"""Inference benchmark against the machine's own limit: FLOPs, GEMM floor, latency, peak memory.

For each model: FLOPs of one forward pass (``torch.utils.flop_counter``, multiply-add = 2 FLOPs), the
machine's fp32 GEMM rate measured in the same run (large square ``torch.mm``, the best a convolution
lowered to GEMM can do), the floor ``FLOPs / GEMM rate``, the median latency over repeated runs, the
achieved GFLOP/s, the ratio to the floor and the peak RSS. Each model runs in its own child process,
so its peak RSS is its own and one model's allocations do not slow the next. The onnxruntime paths are
measured in a process that imports onnxruntime and NumPy only, as a deployment process runs the exported
graph (importing torch alone costs about 0.5 GB of RSS).

Paths: ``eager`` (PyTorch eager, NCHW fp32, the baseline); ``channels_last`` and ``compiled``
(:func:`fcnseg.inference.optimize_for_inference` without and with ``torch.compile``); ``bf16`` (PyTorch
bf16 autocast, channels_last: oneDNN's AMX / AVX512-BF16 kernels); ``fast`` (the exported graph, grouped
bilinear upsampling, run by onnxruntime in fp32, which prepacks every weight once and fuses bias and ReLU
into its GEMMs); ``int8`` (onnxruntime static quantization, :mod:`fcnseg.export.int8`); ``openvino`` and
``openvino-bf16`` (the exported graph compiled by OpenVINO, fp32 / bf16 hint); ``auto`` (what
``--engine auto`` chooses here, :mod:`fcnseg.inference.auto`, timed in a fresh process that reads the
cached decision, as a second run of ``fcnseg predict`` does).

Each path's ratio is against the floor of its own precision (:mod:`fcnseg.floors`: the best fp32, bf16
or int8 GEMM rate of the installed libraries, measured in the same run). A path whose optional
dependency is missing is skipped with one line naming the extra to install.
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

__all__ = [
    "MODELS",
    "PATHS",
    "PRECISION",
    "build",
    "count_gflop",
    "gemm_gflops",
    "gemm_rates",
    "measure",
    "measure_auto",
    "missing_extra",
    "model_gflop",
    "prepare",
    "run",
    "table",
]  # fmt: skip

#: the models of ``fcnseg bench`` by default (``tv_fcn_resnet50`` = torchvision's own FCN, for comparison)
MODELS = ("fcn8s_vgg16", "fcn32s_vgg16", "fcn32s_alexnet", "fcn8s_resnet50", "tv_fcn_resnet50")
PATHS = ("eager", "channels_last", "compiled", "bf16", "fast", "int8", "openvino", "openvino-bf16", "auto")
#: each path's arithmetic (``auto``: that of the engine it chose)
PRECISION = {"eager": "fp32", "channels_last": "fp32", "compiled": "fp32", "bf16": "bf16", "fast": "fp32",
             "int8": "int8", "openvino": "fp32", "openvino-bf16": "bf16"}  # fmt: skip
_TORCH_PATHS = ("eager", "channels_last", "compiled", "bf16")
#: the engine (fcnseg.inference.engines) each exported path runs
_ENGINE_OF = {"fast": "onnxruntime", "int8": "onnxruntime-int8", "openvino": "openvino",
              "openvino-bf16": "openvino-bf16"}  # fmt: skip


def missing_extra(path: str) -> str | None:
    """``"needs X: pip install 'fcnseg[extra]'"`` when a path's optional dependency is missing, else None."""
    from .inference.engines import missing_extra as engine_missing

    return engine_missing(_ENGINE_OF[path]) if path in _ENGINE_OF else None


def gemm_rates(n: int = 2048, repeats: int = 9) -> dict[str, float]:
    """The machine's fp32 GEMM rate (GFLOP/s) per library (:func:`fcnseg.floors.gemm_rates` in fp32).

    They differ by up to 2× on one machine: MKL's x86 dispatch runs well below the hardware's peak on AMD
    CPUs (measured on a 2-core AMD EPYC: torch.mm 217, oneDNN 418, onnxruntime 472 GFLOP/s).
    """
    from .floors import gemm_rates as rates

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
    with torch.device("meta"):
        return model_gflop(build(name), size)


def model_gflop(model: torch.nn.Module, size: int) -> float:
    """GFLOP of one forward pass of ``model`` (eval mode) on a ``size``×``size`` RGB image, on its own device."""
    from torch.utils.flop_counter import FlopCounterMode

    device = next(model.parameters()).device
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model.eval()(torch.zeros(1, 3, size, size, device=device))
    return counter.get_total_flops() / 1e9


#: the end of each runtime-only child: ``compiled(x)`` timed ``repeats`` times after a warm-up, median and peak RSS
_TIMED_TAIL = """
times = []
for _ in range(repeats):
    t = time.perf_counter()
    compiled(x)
    times.append(time.perf_counter() - t)
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"latency_s": statistics.median(times), "peak_rss_mb": hwm / 1024}))
"""

#: the ``fast``/``int8`` measurement: onnxruntime and NumPy only, as a deployment process runs the graph
#: (importing torch alone adds ~0.5 GB of RSS here, which is not the model's)
_ORT_CHILD = (
    """
import json, resource, statistics, sys, time
import numpy as np, onnxruntime as ort
path, size, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
opts = ort.SessionOptions()
opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
x = {session.get_inputs()[0].name: np.random.default_rng(0).standard_normal((1, 3, size, size), np.float32)}
compiled = lambda feed: session.run(None, feed)
compiled(x)
"""
    + _TIMED_TAIL
)

#: the ``openvino`` / ``openvino-bf16`` measurement: OpenVINO and NumPy only
_OV_CHILD = (
    """
import json, statistics, sys, time
import numpy as np, openvino as ov
path, size, repeats, hint, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
core = ov.Core()
model = core.read_model(path)
model.reshape({model.inputs[0].any_name: [1, 3, size, size]})
compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY",
                                             "INFERENCE_NUM_THREADS": threads})
x = np.random.default_rng(0).standard_normal((1, 3, size, size), np.float32)
compiled(x)
"""
    + _TIMED_TAIL
)


def measure(name: str, path: str = "eager", size: int = 500, repeats: int = 5, device: str = "cpu") -> dict[str, float]:
    """A PyTorch path (eager, channels_last, compiled, bf16) in this process (``run`` isolates it in a child).

    On CUDA each timed call ends with ``torch.cuda.synchronize()`` (the GPU's time, not the launch's).
    """
    if path not in _TORCH_PATHS:
        raise ValueError(f"the {path} path is measured by run() in its own runtime's process")
    gflop = count_gflop(name, size)
    dev = torch.device(device)
    x = torch.randn(1, 3, size, size, device=dev)
    model = build(name).to(dev)
    forward: Callable[[], Any] = lambda: model(x)  # noqa: E731
    if path != "eager":  # what the torch / torch-bf16 engines run: channels_last (+ torch.compile, frozen)
        from .inference.engines import build_runner
        from .inference.fast import optimize_for_inference

        if path == "bf16":
            fast: Any = build_runner("torch-bf16", model, device=dev, source=None)  # a bf16 copy on CPUs
        else:
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


def measure_auto(name: str, size: int, repeats: int, weights: str, phase: str = "run") -> dict[str, Any]:
    """The ``auto`` path in two processes, as a user meets it: ``phase="decide"`` writes the model's weights
    to ``weights`` and the decision (with the exported graphs) beside them; ``phase="run"`` reads the cached
    decision, then times the chosen engine (its peak RSS is the steady state's, not the decision's)."""
    from dataclasses import asdict

    from safetensors.torch import load_file, save_file

    from .inference.auto import AutoEngine, size_bucket

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
    auto = AutoEngine(model, device=torch.device("cpu"), source=path, engine="auto", log=lambda line: None,
                      reloadable=True)
    x = torch.randn(1, 3, size, size)
    with torch.inference_mode():
        engine = auto.engine_for(x)
        if phase == "decide":
            return {"engine": engine, "decision": asdict(auto.decisions[size_bucket(size, size)])}
        runner = auto.runner(engine)
        latency = statistics.median(_timings(lambda: runner(x), repeats))
    gflop = count_gflop(name, size)
    return {"engine": engine, "gflop": gflop, "latency_s": latency, "gflops_per_s": gflop / latency,
            "peak_rss_mb": peak_rss_mb()}  # fmt: skip


def _skip_reason(name: str, path: str, device: torch.device) -> str | None:
    if name == "tv_fcn_resnet50" and path in ("int8", "auto", "openvino", "openvino-bf16"):
        return "torchvision's own FCN runs the PyTorch paths and fast only (the comparison baseline)"
    if device.type == "cuda" and path not in _TORCH_PATHS:
        return "a CPU path (benchmarks/bench_gpu.py measures bf16, TF32 and batch 16 on GPUs)"
    return missing_extra(path)


def _last_json(out: str) -> dict[str, Any]:
    return json.loads(out.strip().splitlines()[-1])


def _measure_path(name: str, path: str, size: int, repeats: int, dev: torch.device, tmp: str) -> dict[str, Any]:
    """One model × path in child processes (export, then the runtime's own process)."""
    if path in _TORCH_PATHS:
        return _last_json(_child(f"import json, fcnseg.bench as b; print(json.dumps(b.measure({name!r}, {path!r}, "
                                 f"{size}, {repeats}, {str(dev)!r})))"))  # fmt: skip
    if path == "auto":
        weights = str(Path(tmp) / f"{name}-auto.safetensors")
        call = (f"import json, fcnseg.bench as b; "
                f"print(json.dumps(b.measure_auto({name!r}, {size}, {repeats}, {weights!r}")  # fmt: skip
        decided = _last_json(_child(call + ', "decide")))'))
        r = _last_json(_child(call + ', "run")))'))
        r["decision"] = decided["decision"]
        from .inference.engines import PRECISION as ENGINE_PRECISION

        r["precision"] = ENGINE_PRECISION[r["engine"]]
        return r
    kind = "int8" if path == "int8" else "fast"  # the openvino paths compile the fp32 graph
    onnx = str(Path(tmp) / f"{name}-{kind}.onnx")
    if Path(onnx).is_file():  # exported for an earlier path of this run
        prep = json.dumps({"gflop": count_gflop(name, size)})
    else:
        prep = _child(f"import fcnseg.bench as b; b.prepare({name!r}, {kind!r}, {onnx!r}, {size})")
    if path.startswith("openvino"):
        hint = "bf16" if path == "openvino-bf16" else "f32"
        r = _last_json(_child(_OV_CHILD, onnx, str(size), str(repeats), hint, str(torch.get_num_threads())))
    else:
        r = _last_json(_child(_ORT_CHILD, onnx, str(size), str(repeats)))
    r["gflop"] = json.loads(prep.strip().splitlines()[0])["gflop"]
    r["gflops_per_s"] = r["gflop"] / r["latency_s"]
    return r


def run(
    models: tuple[str, ...] = MODELS,
    paths: tuple[str, ...] = ("eager", "fast"),
    size: int = 500,
    repeats: int = 5,
    device: str = "cpu",
) -> dict[str, Any]:
    """Every model × path in its own child process, against floors measured in this run.

    Each path's floor is ``FLOPs / GEMM rate`` of its own precision (fp32, bf16, int8; :mod:`fcnseg.floors`).
    On a CUDA ``device`` the PyTorch paths run there against the GPU's fp32 GEMM rate; CPU-only paths and
    paths whose optional dependency is missing are listed in ``results["skipped"]`` with the reason.
    """
    from .floors import floors
    from .models import list_models
    from .runtime.hardware import cpu_features, isa_summary

    unknown = [m for m in models if m not in (*list_models(), "tv_fcn_resnet50")]
    if unknown:
        raise ModelError(f"unknown model(s) {', '.join(unknown)}; see `fcnseg list`, or tv_fcn_resnet50")
    dev = torch.device(device)
    if dev.type == "cuda":
        gemm = cuda_gemm_gflops(dev)
        limits = {"fp32": {"gflops": gemm, "library": "cuda torch.mm", "by_library": {"cuda torch.mm": gemm}}}
    else:
        limits = floors()
    results: dict[str, Any] = {
        "size": size, "repeats": repeats, "isa": isa_summary(), "cpu": cpu_features(), "floors": limits,
        "gemm_gflops": limits["fp32"]["gflops"], "gemm_gflops_by_library": limits["fp32"]["by_library"],
        "threads": torch.get_num_threads(), "device": str(dev), "torch": torch.__version__, "models": {},
        "skipped": {},
    }  # fmt: skip
    tmp = tempfile.mkdtemp(prefix="fcnseg-bench-")
    for name in models:
        for path in paths:
            reason = _skip_reason(name, path, dev)
            if reason:
                results["skipped"][f"{name}/{path}"] = reason
                continue
            r = _measure_path(name, path, size, repeats, dev, tmp)
            r["precision"] = r.get("precision") or PRECISION[path]
            r["floor_s"] = r["gflop"] / limits.get(r["precision"], limits["fp32"])["gflops"]
            r["ratio_to_floor"] = r["latency_s"] / r["floor_s"]
            results["models"][f"{name}/{path}"] = r
    return results


def table(results: dict[str, Any]) -> str:
    """The results as a Markdown table, the floors above it and the skipped paths below it (one line each)."""
    floors = results.get("floors") or {"fp32": {"gflops": results["gemm_gflops"], "library": "best",
                                                "by_library": results.get("gemm_gflops_by_library", {})}}  # fmt: skip
    lines = [
        f"{results['size']}×{results['size']}, batch 1, median of {results['repeats']}, {results['threads']} threads, "
        f"torch {results['torch']}; {results.get('isa', '')}",
        "floors (best GEMM rate per precision, GFLOP/s): " + "; ".join(
            f"{p} {f['gflops']:.0f} ({f['library']}; " + ", ".join(f"{k} {v:.0f}" for k, v in f["by_library"].items())
            + ")" for p, f in floors.items()),
        "",
        "| model / path | precision | GFLOP | latency (s) | GFLOP/s | floor (s) | ratio to floor | peak RSS (MB) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]  # fmt: skip
    for key, r in results["models"].items():
        label = f"{key} → {r['engine']}" if "engine" in r else key
        lines.append(f"| {label} | {r.get('precision', 'fp32')} | {r['gflop']:.1f} | {r['latency_s']:.3f} | "
                     f"{r['gflops_per_s']:.0f} | {r['floor_s']:.3f} | {r['ratio_to_floor']:.2f} | "
                     f"{r['peak_rss_mb']:.0f} |")  # fmt: skip
    lines += [f"skipped {key}: {why}" for key, why in results.get("skipped", {}).items()]
    return "\n".join(lines)
