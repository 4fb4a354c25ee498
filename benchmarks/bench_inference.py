"""Inference against the machine's fp32 GEMM floor (``fcnseg bench`` without installing the CLI).

Usage:  python benchmarks/bench_inference.py [--models fcn8s_vgg16 …] [--paths torch auto …] [--json FILE]

See :mod:`fcnseg.bench`: FLOPs, the GEMM rate measured in this run, median latency, GFLOP/s, the
ratio to the floor and peak RSS, each model and path in its own child process, printed as a table.
"""

from __future__ import annotations

import sys

from fcnseg.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
