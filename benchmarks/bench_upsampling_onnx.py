"""The FCN-8s upsampling layers in onnxruntime: dense vs grouped ConvTranspose vs Pad+Resize+Slice.

Usage:  python benchmarks/bench_upsampling_onnx.py [--size 500] [--classes 21] [--repeats 20]

Builds FCN-8s's three fixed bilinear layers (upscore2 k4/s2, upscore_pool4 k4/s2, upscore8 k16/s8) on
score maps of the shapes a ``size``×``size`` image gives (reference pad-100 geometry), exports each form
with ``fcnseg.export`` machinery (``set_upsampling``), checks the three ONNX files agree, and prints the
median onnxruntime latency of each and its ratio to the dense form, measured side by side.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from fcnseg.models.layers import BilinearUpsample, set_upsampling


class Head(nn.Module):
    """Three chained upsamplings, as FCN-8s's head runs them (without the skip additions)."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.upscore2 = BilinearUpsample(k, 4, 2)
        self.upscore_pool4 = BilinearUpsample(k, 4, 2)
        self.upscore8 = BilinearUpsample(k, 16, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.upscore2(x)
        b = self.upscore_pool4(a[..., 1:-1, 1:-1])
        return self.upscore8(b)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=500)
    ap.add_argument("--classes", type=int, default=21)
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    h32 = (args.size + 198 + 31) // 32 - 6  # fc7's map for a pad-100 input of this size
    x = torch.randn(1, args.classes, h32, h32)
    head = Head(args.classes).eval()
    outs, times = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("dense", "grouped", "resize"):
            set_upsampling(head, mode)
            path = Path(tmp) / f"{mode}.onnx"
            torch.onnx.export(head, (x,), str(path), dynamo=True, opset_version=18, verbose=False)
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            feed = {session.get_inputs()[0].name: x.numpy()}
            outs[mode] = session.run(None, feed)[0]
            ts = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                session.run(None, feed)
                ts.append(time.perf_counter() - t)
            times[mode] = statistics.median(ts)
    diff = max(float(np.abs(outs[m] - outs["dense"]).max()) for m in outs)
    print(
        f"FCN-8s upsampling head, {args.classes} classes, {args.size}×{args.size} image (score map {h32}²), "
        f"onnxruntime {ort.__version__}, {torch.get_num_threads()} threads; max |diff| between forms {diff:.2g}"
    )
    print(f"{'form':<10}{'median ms':>12}{'vs dense':>10}")
    for mode, t in times.items():
        print(f"{mode:<10}{t * 1e3:>12.2f}{times['dense'] / t:>9.1f}×")


if __name__ == "__main__":
    main()
