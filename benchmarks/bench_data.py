"""SyntheticShapes generation speed on one core, with the I/O path measured beside it.

Usage:  python benchmarks/bench_data.py [--n 500] [--size 128]

Prints samples/s for on-the-fly generation (the dataset as training uses it) and for reading the same
scenes back from a VOC-layout copy on disk (JPEG + palette PNG), and their ratio, measured in one run.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from fcnseg.data import SyntheticShapes, VOCSegmentation
from fcnseg.data.check import write_voc_layout


def _rate(ds, n: int) -> float:
    t = time.perf_counter()
    for i in range(n):
        ds[i]
    return n / (time.perf_counter() - t)


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--size", type=int, default=128)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    synth = _rate(SyntheticShapes(args.n, args.size, seed=0), args.n)
    with tempfile.TemporaryDirectory() as d:
        write_voc_layout(d, n=args.n + 1, size=args.size, seed=0, val_fraction=1 / (args.n + 1))
        disk = _rate(VOCSegmentation(d, "train"), args.n)
    print(f"SyntheticShapes {args.size}×{args.size}, 1 thread:")
    print(f"  generated on the fly: {synth:8.1f} samples/s")
    print(f"  read from VOC layout: {disk:8.1f} samples/s")
    print(f"  ratio generate/read:  {synth / disk:8.2f}×")
    return {"generate": synth, "read": disk}


if __name__ == "__main__":
    main()
