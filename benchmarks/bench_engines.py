"""Issue 17's targets in one run: ``--engine auto`` against every single path, torchfcn and the floors.

Usage:  python benchmarks/bench_engines.py [--model fcn8s_vgg16] [--size 500] [--repeats 5] [--json FILE]

Runs ``fcnseg bench`` for one model with every engine of the registry (each in its own process) and ``auto`` (as
it runs once tuned: ``fcnseg tune``'s decision in a fresh FCNSEG_HOME), plus torchfcn's eager ``FCN8s`` (its
released source, fetched as ``.ci/run`` does into ``.cache/torchfcn``; skipped, saying so, without it), all against
per-precision GEMM floors measured in the same run, then prints the ratios the issues ask for:

- auto / best single engine (target ≤ 1.05);
- onnxruntime (fp32) / auto and torchfcn eager / auto;
- auto / its precision's floor (≤ 1.3), onnxruntime / the fp32 floor; peak RSS.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from fcnseg.bench import PATHS, run, table
from fcnseg.io import atomic_write

REPO = Path(__file__).resolve().parents[1]


def torchfcn_child(root: str, size: int, repeats: int) -> None:
    """torchfcn's ``FCN8s`` from its released source, timed in this process (``--torchfcn-child``)."""
    import importlib.util
    import statistics
    import time
    import types

    import torch

    sys.modules.setdefault("fcn", types.ModuleType("fcn"))
    spec = importlib.util.spec_from_file_location("tf", root, submodule_search_locations=[root.rsplit("/", 1)[0]])
    mod = importlib.util.module_from_spec(spec)
    sys.modules["tf"] = mod
    spec.loader.exec_module(mod)
    model = mod.FCN8s(n_class=21).eval()
    x = torch.randn(1, 3, size, size)
    with torch.inference_mode():
        model(x)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t)
    with open("/proc/self/status") as f:
        hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    print(json.dumps({"latency_s": statistics.median(times), "peak_rss_mb": hwm / 1024}))


def torchfcn(size: int, repeats: int) -> dict | None:
    hits = sorted((REPO / ".cache" / "torchfcn").glob("**/torchfcn/models/__init__.py"))
    if not hits:
        print(
            "skipped torchfcn: its source is not in .cache/torchfcn (pip download --no-deps --no-binary :all: "
            "torchfcn==1.9.7, then untar there)"
        )
        return None
    out = subprocess.run(
        [sys.executable, __file__, "--torchfcn-child", str(hits[0]), str(size), str(repeats)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def ratios(results: dict, ref: dict | None) -> dict[str, float]:
    m = {k.split("/", 1)[1]: v for k, v in results["models"].items()}
    auto = m["auto"]["latency_s"]
    singles = {k: v["latency_s"] for k, v in m.items() if k != "auto"}
    out = {
        "auto_over_best_single": auto / min(singles.values()),
        "best_single": min(singles, key=singles.get),
        "auto_over_its_floor": m["auto"]["ratio_to_floor"],
        "auto_peak_rss_mb": m["auto"]["peak_rss_mb"],
    }
    if "onnxruntime" in m:
        out["onnxruntime_over_auto"] = m["onnxruntime"]["latency_s"] / auto
        out["onnxruntime_over_fp32_floor"] = m["onnxruntime"]["ratio_to_floor"]
    if ref:
        out["torchfcn_eager_over_auto"] = ref["latency_s"] / auto
    return out


def main() -> int:
    if sys.argv[1:2] == ["--torchfcn-child"]:
        torchfcn_child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        return 0
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="fcn8s_vgg16")
    p.add_argument("--size", type=int, default=500)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", help="write the results and ratios here")
    args = p.parse_args()
    paths = tuple(x for x in PATHS if x not in ("channels_last", "compiled"))
    results = run((args.model,), paths, args.size, args.repeats)
    ref = torchfcn(args.size, args.repeats) if args.model == "fcn8s_vgg16" else None
    results["torchfcn_eager"] = ref
    results["ratios"] = ratios(results, ref)
    print(table(results))
    if ref:
        print(f"torchfcn FCN8s eager: {ref['latency_s']:.3f} s, peak RSS {ref['peak_rss_mb']:.0f} MB")
    decision = results["models"][f"{args.model}/auto"].get("decision", {})
    print(
        "auto decided: "
        + ", ".join(f"{k} {v:.3f}s" for k, v in sorted(decision.get("seconds", {}).items(), key=lambda kv: kv[1]))
    )
    for k, v in results["ratios"].items():
        print(f"{k}: {v if isinstance(v, str) else round(v, 3)}")
    if args.json:
        with atomic_write(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
