"""A benchmark process that runs an exported graph without torch, as a deployment process would.

``python -m fcnseg.bench.child onnxruntime|openvino GRAPH SIZE REPEATS [HINT THREADS]``: loads the graph (OpenVINO:
compiled for ``1×3×SIZE×SIZE`` with precision ``HINT``), runs it once, then ``REPEATS`` timed runs; prints one JSON
line ``{"latency_s": median, "peak_rss_mb": …}``. Only NumPy and the runtime are imported (torch alone would add
about 0.5 GB of resident memory that is not the model's).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

__all__ = ["main"]


def _onnxruntime(graph: str, x: Any) -> Callable[[], Any]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    session = ort.InferenceSession(graph, opts, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: x}
    return lambda: session.run(None, feed)


def _openvino(graph: str, x: Any, hint: str, threads: int) -> Callable[[], Any]:
    import openvino as ov

    core = ov.Core()
    model = core.read_model(graph)
    model.reshape({model.inputs[0].any_name: list(x.shape)})
    compiled = core.compile_model(
        model,
        "CPU",
        {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads},
    )
    return lambda: compiled(x)


def _peak_rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


def main(argv: list[str]) -> int:
    import numpy as np

    runtime, graph, size, repeats = argv[0], argv[1], int(argv[2]), int(argv[3])
    x = np.random.default_rng(0).standard_normal((1, 3, size, size), np.float32)
    if runtime == "onnxruntime":
        run = _onnxruntime(graph, x)
    else:
        run = _openvino(graph, x, argv[4], int(argv[5]))
    run()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    print(json.dumps({"latency_s": statistics.median(times), "peak_rss_mb": _peak_rss_mb()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
