"""Forward-pass timing of the FCN family on this machine, with side-by-side ratios.

Usage:  python benchmarks/bench_forward.py [--size 500] [--repeats 5] [--models fcn8s_vgg16 ...]

For each model: parameter count, median forward latency (inference mode, fp32, batch 1) and, for the
fixed bilinear upsampling, the ratio of the dense K×K transposed convolution to fcnseg's grouped one,
measured in the same run (machines are noisy; only ratios measured side by side are compared).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

import fcnseg
from fcnseg.models import BilinearUpsample


def _median_latency(model: torch.nn.Module, x: torch.Tensor, repeats: int) -> float:
    with torch.inference_mode():
        model(x)  # warm-up (allocator, oneDNN primitive cache)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def _dense(model: torch.nn.Module) -> torch.nn.Module:
    for m in model.modules():
        if isinstance(m, BilinearUpsample):
            m.grouped_weight = torch.empty(0)
    return model


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--models", nargs="+", default=["fcn8s_vgg16", "fcn32s_alexnet", "fcn8s_resnet50"])
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    x = torch.randn(1, 3, args.size, args.size)
    results = {}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, input 1×3×{args.size}×{args.size}")
    print(f"{'model':24s} {'params (M)':>10s} {'latency (s)':>12s} {'dense-upsample/grouped':>24s}")
    for name in args.models:
        model = fcnseg.get_model(name).eval()
        params = sum(p.numel() for p in model.parameters())
        grouped = _median_latency(model, x, args.repeats)
        dense = _median_latency(_dense(model), x, args.repeats)
        results[name] = {
            "params": params,
            "latency_s": grouped,
            "dense_upsample_latency_s": dense,
            "ratio": dense / grouped,
        }
        print(f"{name:24s} {params / 1e6:10.2f} {grouped:12.3f} {dense / grouped:23.2f}×")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
