"""Peak memory and time of tiled inference on a huge image, against whole-image inference of a smaller one.

Usage:  python benchmarks/bench_tiling.py [--model fcn8s_vgg16] [--height 4000 --width 6000] [--tile 512 --overlap 128]

Runs in this process and reports peak RSS (ru_maxrss) after building the model, then after tiled
inference; fp32 CPU, random weights (memory and time do not depend on the weights).
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch

import fcnseg


def _rss_mb() -> float:
    """Peak RSS of this process (VmHWM; ru_maxrss can include a forking parent's high-water mark)."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="fcn8s_vgg16")
    ap.add_argument("--height", type=int, default=4000)
    ap.add_argument("--width", type=int, default=6000)
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--overlap", type=int, default=128)
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    seg = fcnseg.Segmenter(fcnseg.get_model(args.model).eval())
    image = np.random.default_rng(0).integers(0, 256, (args.height, args.width, 3), dtype=np.uint8)
    base = _rss_mb()
    t = time.perf_counter()
    labels = seg.predict(image, tile=args.tile, overlap=args.overlap)
    seconds = time.perf_counter() - t
    peak = _rss_mb()
    assert labels.shape == image.shape[:2]
    print(
        f"{args.model}, {args.width}×{args.height} image, tile {args.tile} overlap {args.overlap}, "
        f"torch {torch.__version__}"
    )
    print(f"  peak RSS after model + image: {base:8.0f} MB")
    print(f"  peak RSS after tiled predict: {peak:8.0f} MB")
    print(f"  tiled predict time:           {seconds:8.1f} s")
    return {"base_mb": base, "peak_mb": peak, "seconds": seconds}


if __name__ == "__main__":
    main()
