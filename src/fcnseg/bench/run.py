"""``fcnseg bench``'s run: every model × path in processes of its own, against floors measured in the same run."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import torch

from ..errors import FCNError, ModelError
from ..inference.engines import ENGINES
from . import MODELS, PRECISION, VARIANTS
from .measure import _child, count_gflop, cuda_gemm_gflops, missing_extra

__all__ = ["run", "table"]

_TORCH_PATHS = (*VARIANTS, *(n for n, e in ENGINES.items() if not e.exported))
#: the exported graph each exported engine runs
_GRAPH_OF = {
    "onnxruntime": "onnx",
    "openvino": "onnx",
    "openvino-bf16": "onnx",
    "onnxruntime-int8": "onnx-int8",
    "openvino-int8": "openvino-int8",
}


def _skip_reason(name: str, path: str, device: torch.device) -> str | None:
    if name == "tv_fcn_resnet50" and path not in (*_TORCH_PATHS, "onnxruntime"):
        return "torchvision's own FCN runs the PyTorch paths and onnxruntime only (the comparison baseline)"
    if device.type == "cuda" and path not in _TORCH_PATHS:
        return "a CPU path (benchmarks/bench_gpu.py measures bf16, TF32 and batch 16 on GPUs)"
    if path in ENGINES and device.type not in ENGINES[path].devices:
        return f"runs on {' or '.join(ENGINES[path].devices)}"
    return missing_extra(path)


#: the module whose functions the measuring processes run (``python -m fcnseg.bench.measure FUNCTION ARGS``)
_MEASURE = "fcnseg.bench.measure"


def _last_json(out: str) -> dict[str, Any]:
    lines = out.strip().splitlines()
    if not lines:
        raise FCNError("a benchmark process printed no result")
    return json.loads(lines[-1])


def _call(function: str, *args: Any, env: dict[str, str] | None = None) -> dict[str, Any]:
    """``fcnseg.bench.measure.FUNCTION(*ARGS)`` in a process of its own; the JSON it prints."""
    return _last_json(_child(_MEASURE, function, json.dumps(args), env=env))


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
        r = _last_json(
            _child("fcnseg.bench.child", "openvino", graph, str(size), str(repeats), hint, str(torch.get_num_threads()))
        )
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
        _child(_MEASURE, "prepare", json.dumps([name, kind, out, size, onnx]))
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
        "size": size,
        "repeats": repeats,
        "isa": isa_summary(),
        "cpu": cpu_features(),
        "floors": limits,
        "gemm_gflops": limits["fp32"]["gflops"],
        "gemm_gflops_by_library": limits["fp32"]["by_library"],
        "threads": torch.get_num_threads(),
        "device": str(dev),
        "torch": torch.__version__,
        "models": {},
        "skipped": {},
    }
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
    floors = results.get("floors") or {
        "fp32": {
            "gflops": results["gemm_gflops"],
            "library": "best",
            "by_library": results.get("gemm_gflops_by_library", {}),
        }
    }
    lines = [
        f"{results['size']}×{results['size']}, batch 1, median of {results['repeats']}, {results['threads']} threads, "
        f"torch {results['torch']}; {results.get('isa', '')}",
        "floors (best GEMM rate per precision, GFLOP/s): "
        + "; ".join(
            f"{p} {f['gflops']:.0f} ({f['library']}; "
            + ", ".join(f"{k} {v:.0f}" for k, v in f["by_library"].items())
            + ")"
            for p, f in floors.items()
        ),
        "",
        "| model / path | precision | GFLOP | latency (s) | GFLOP/s | floor (s) | ratio to floor | peak RSS (MB) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for key, r in results["models"].items():
        label = f"{key} → {r['engine']}" if "engine" in r else key
        lines.append(
            f"| {label} | {r.get('precision', 'fp32')} | {r['gflop']:.1f} | {r['latency_s']:.3f} | "
            f"{r['gflops_per_s']:.0f} | {r['floor_s']:.3f} | {r['ratio_to_floor']:.2f} | "
            f"{r['peak_rss_mb']:.0f} |"
        )
    lines += [f"skipped {key}: {why}" for key, why in results.get("skipped", {}).items()]
    return "\n".join(lines)
