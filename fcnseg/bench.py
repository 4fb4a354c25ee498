"""Inference benchmark against the machine's own limit: FLOPs, GEMM floor, latency, peak memory.

For each model: FLOPs of one forward pass (``torch.utils.flop_counter``, multiply-add = 2 FLOPs), the
machine's fp32 GEMM rate measured in the same run (large square ``torch.mm``, the best a convolution
lowered to GEMM can do), the floor ``FLOPs / GEMM rate``, the median latency over repeated runs, the
achieved GFLOP/s, the ratio to the floor and the peak RSS. Each model runs in its own child process,
so its peak RSS is its own and one model's allocations do not slow the next.

Paths: ``eager`` (plain NCHW fp32, the baseline), ``fast`` (fcnseg's fp32 CPU path:
:func:`fcnseg.inference.optimize_for_inference` — channels_last, inference mode, oneDNN, grouped
upsampling), ``int8`` (onnxruntime static quantization, :mod:`fcnseg.export.int8`).
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["MODELS", "PATHS", "build", "gemm_gflops", "measure", "run"]

#: the models of ``fcnseg bench`` by default (``tv_fcn_resnet50`` = torchvision's own FCN, for comparison)
MODELS = ("fcn8s_vgg16", "fcn32s_vgg16", "fcn32s_alexnet", "fcn8s_resnet50", "tv_fcn_resnet50")
PATHS = ("eager", "fast", "int8")


def gemm_gflops(n: int = 2048, repeats: int = 7) -> float:
    """The machine's fp32 GEMM rate (GFLOP/s): the median of ``repeats`` ``n×n @ n×n`` products."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(times) / 1e9


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


def _runner(name: str, path: str, x: torch.Tensor) -> Callable[[], Any]:
    model = build(name)
    if path == "eager":
        return lambda: model(x)
    if path == "fast":
        from .inference.fast import optimize_for_inference

        fast = optimize_for_inference(model)
        xc = x.contiguous(memory_format=torch.channels_last)
        return lambda: fast(xc)
    if path == "int8":
        import tempfile
        from pathlib import Path

        from .data import SyntheticShapes
        from .data.transforms import eval_transforms
        from .export.int8 import OnnxModule, quantize_int8
        from .preprocessing import CAFFE_VOC

        calib = SyntheticShapes(8, x.shape[-1], "train", transforms=eval_transforms(CAFFE_VOC))
        tmp = Path(tempfile.mkdtemp()) / f"{name}.int8.onnx"
        int8 = OnnxModule(quantize_int8(model, tmp, (calib[i][0] for i in range(4))), model)
        return lambda: int8(x)
    raise ValueError(f"unknown path {path!r}; use one of {PATHS}")


def measure(name: str, path: str = "fast", size: int = 500, repeats: int = 5) -> dict[str, float]:
    """One model on one path in this process (see :func:`run` for the isolated, side-by-side version)."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.randn(1, 3, size, size)
    with torch.inference_mode():
        with FlopCounterMode(display=False) as counter:
            build(name)(x)
        step = _runner(name, path, x)
        step()  # warm-up: allocator, oneDNN primitive and weight caches
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            step()
            times.append(time.perf_counter() - t)
    gflop = counter.get_total_flops() / 1e9
    latency = statistics.median(times)
    return {"gflop": gflop, "latency_s": latency, "gflops_per_s": gflop / latency,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}  # fmt: skip


def run(
    models: tuple[str, ...] = MODELS, paths: tuple[str, ...] = ("eager", "fast"), size: int = 500, repeats: int = 5
) -> dict[str, Any]:
    """Every model × path in its own child process, with the GEMM rate measured in this run."""
    gemm = gemm_gflops()
    results: dict[str, Any] = {
        "size": size,
        "repeats": repeats,
        "gemm_gflops": gemm,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "models": {},
    }
    for name in models:
        for path in paths:
            if path == "int8" and name == "tv_fcn_resnet50":
                continue
            code = (f"import json, fcnseg.bench as b; print(json.dumps(b.measure({name!r}, {path!r}, {size}, "
                    f"{repeats})))")  # fmt: skip
            proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            if proc.returncode:
                raise RuntimeError(f"{name}/{path} failed:\n{proc.stderr[-2000:]}")
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            r["floor_s"] = r["gflop"] / gemm
            r["ratio_to_floor"] = r["latency_s"] / r["floor_s"]
            results["models"][f"{name}/{path}"] = r
    return results


def table(results: dict[str, Any]) -> str:
    """The results as a Markdown table."""
    lines = [
        f"{results['size']}×{results['size']}, batch 1, fp32 unless int8, median of {results['repeats']}; "
        f"GEMM {results['gemm_gflops']:.0f} GFLOP/s on {results['threads']} threads, torch {results['torch']}",
        "",
        "| model / path | GFLOP | latency (s) | GFLOP/s | floor (s) | ratio to floor | peak RSS (MB) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for key, r in results["models"].items():
        lines.append(f"| {key} | {r['gflop']:.1f} | {r['latency_s']:.3f} | {r['gflops_per_s']:.0f} | "
                     f"{r['floor_s']:.3f} | {r['ratio_to_floor']:.2f} | {r['peak_rss_mb']:.0f} |")  # fmt: skip
    return "\n".join(lines)
