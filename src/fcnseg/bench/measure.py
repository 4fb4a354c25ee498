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
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..errors import FCNError, ModelError
from ..inference.engines import ENGINES
from . import MODELS, PRECISION, VARIANTS

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
    "run",
    "table",
]

#: paths measured in a PyTorch process (the variants and the PyTorch engines)
_TORCH_PATHS = (*VARIANTS, *(n for n, e in ENGINES.items() if not e.exported))
#: the exported graph each exported engine runs
_GRAPH_OF = {"onnxruntime": "onnx", "openvino": "onnx", "openvino-bf16": "onnx", "onnxruntime-int8": "onnx-int8",
             "openvino-int8": "openvino-int8"}  # fmt: skip


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

    proc = subprocess.run([sys.executable, "-m", module, *argv], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})  # fmt: skip
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
        engine = auto.engine_for(x)
        runner = auto.runner(engine)
        latency = statistics.median(_timings(lambda: runner(x), repeats))
    gflop = count_gflop(name, size)
    return {"engine": engine, "gflop": gflop, "latency_s": latency, "gflops_per_s": gflop / latency,
            "peak_rss_mb": peak_rss_mb()}  # fmt: skip


def _skip_reason(name: str, path: str, device: torch.device) -> str | None:
    if name == "tv_fcn_resnet50" and path not in (*_TORCH_PATHS, "onnxruntime"):
        return "torchvision's own FCN runs the PyTorch paths and onnxruntime only (the comparison baseline)"
    if device.type == "cuda" and path not in _TORCH_PATHS:
        return "a CPU path (benchmarks/bench_gpu.py measures bf16, TF32 and batch 16 on GPUs)"
    if path in ENGINES and device.type not in ENGINES[path].devices:
        return f"runs on {' or '.join(ENGINES[path].devices)}"
    return missing_extra(path)


def _last_json(out: str) -> dict[str, Any]:
    return json.loads(out.strip().splitlines()[-1])


def _call(function: str, *args: Any, env: dict[str, str] | None = None) -> dict[str, Any]:
    """``fcnseg.bench.measure.FUNCTION(*ARGS)`` in a process of its own; the JSON it prints."""
    return _last_json(_child(__name__, function, json.dumps(args), env=env))


def _measure_path(name: str, path: str, size: int, repeats: int, dev: torch.device, tmp: str) -> dict[str, Any]:
    """One model × path in child processes (export, then the runtime's own process)."""
    if path in _TORCH_PATHS:
        return _call("measure", name, path, size, repeats, str(dev))
    if path == "auto":
        weights = str(Path(tmp) / f"{name}-auto.safetensors")
        env = {"FCNSEG_HOME": str(Path(tmp) / "home")}
        decided = _call("measure_auto", name, size, repeats, weights, "decide", env=env)
        r = _call("measure_auto", name, size, repeats, weights, "run", env=env)
        r["decision"] = decided["decision"]
        r["precision"] = ENGINES[r["engine"]].precision
        return r
    kind = _GRAPH_OF[path]
    graph = _graph(name, kind, size, tmp)
    if path.startswith("openvino"):
        hint = "bf16" if path == "openvino-bf16" else "f32"
        r = _last_json(_child("fcnseg.bench.child", "openvino", graph, str(size), str(repeats), hint,
                              str(torch.get_num_threads())))  # fmt: skip
    else:
        r = _last_json(_child("fcnseg.bench.child", "onnxruntime", graph, str(size), str(repeats)))
    r["gflop"] = count_gflop(name, size)
    r["gflops_per_s"] = r["gflop"] / r["latency_s"]
    return r


def _graph(name: str, kind: str, size: int, tmp: str) -> str:
    """The graph ``kind`` of ``name``, exported (once per run) in a process of its own."""
    suffix = {"onnx": ".onnx", "onnx-int8": ".int8.onnx", "openvino-int8": ".int8.xml"}[kind]
    out = str(Path(tmp) / f"{name}{suffix}")
    if not Path(out).is_file():
        onnx = _graph(name, "onnx", size, tmp) if kind == "openvino-int8" else ""
        _child(__name__, "prepare", json.dumps([name, kind, out, size, onnx]))
    return out


def run(
    models: tuple[str, ...] = MODELS,
    paths: tuple[str, ...] = ("torch", "onnxruntime"),
    size: int = 500,
    repeats: int = 5,
    device: str = "cpu",
) -> dict[str, Any]:
    """Every model × path in its own child process, against floors measured in this run.

    Each path's floor is ``FLOPs / GEMM rate`` of its own precision (fp32, bf16, int8; :mod:`fcnseg.floors`).
    On a CUDA ``device`` the PyTorch paths run there against the GPU's fp32 GEMM rate; CPU-only paths and
    paths whose optional dependency is missing are listed in ``results["skipped"]`` with the reason.
    """
    from ..floors import floors
    from ..models import list_models
    from ..runtime.hardware import cpu_features, isa_summary

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


def _main(argv: list[str]) -> int:
    """``python -m fcnseg.bench.measure FUNCTION ARGS_JSON``: one measurement in a process of its own."""
    function, args = argv[0], json.loads(argv[1])
    result = globals()[function](*args)
    if result is not None:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
