"""Memory-lean mode against the reference: FLOPs, peak memory and time of one forward pass.

Usage:  python benchmarks/bench_pad100.py [--model fcn8s_vgg16] [--size 500] [--repeats 3]

Each mode runs in its own child process (so peak RSS is its own): build the net, one warm-up forward,
then ``repeats`` timed forwards (inference mode, fp32, batch 1). FLOPs come from
``torch.utils.flop_counter``; "activation peak" is the peak RSS minus the RSS after building the
net (weights are the same in both modes); "train" is one forward + backward of the summed loss,
whose stored activations are what runs out of memory at batch 1. Ratios are of two runs made side by side, alternating.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time


def child(model_name: str, size: int, pad100: bool, repeats: int) -> dict[str, float]:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    import fcnseg
    from fcnseg.bench import peak_rss_mb

    model = fcnseg.get_model(model_name, pad100=pad100).eval()
    x = torch.randn(1, 3, size, size)
    base = peak_rss_mb()
    with torch.inference_mode():
        with FlopCounterMode(display=False) as counter:
            model(x)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t)
    peak = peak_rss_mb()
    model.train()  # one training step (forward + backward, summed loss), the out-of-memory case at batch 1
    y = torch.randint(0, 21, (1, size, size))
    t = time.perf_counter()
    torch.nn.functional.cross_entropy(model(x), y, reduction="sum").backward()
    train_s = time.perf_counter() - t
    train_peak = peak_rss_mb()
    return {
        "gflop": counter.get_total_flops() / 1e9,
        "latency_s": statistics.median(times),
        "peak_rss_mb": peak,
        "activation_peak_mb": peak - base,
        "train_step_s": train_s,
        "train_peak_rss_mb": train_peak,
        "train_extra_mb": train_peak - base,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="fcn8s_vgg16")
    ap.add_argument("--size", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", help="also write the results to this file")
    ap.add_argument("--child", choices=["ref", "lean"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.model, args.size, args.child == "ref", args.repeats)))
        return
    results: dict[str, dict[str, float]] = {}
    for mode in ("ref", "lean"):
        cmd = [
            sys.executable,
            __file__,
            "--child",
            mode,
            "--model",
            args.model,
            "--size",
            str(args.size),
            "--repeats",
            str(args.repeats),
        ]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        results[mode] = json.loads(out.strip().splitlines()[-1])
    ref, lean = results["ref"], results["lean"]
    print(f"{args.model} at {args.size}×{args.size}, batch 1, fp32 inference, median of {args.repeats}")
    print(f"{'':<22}{'pad100=True':>14}{'pad100=False':>14}{'lean/ref':>10}")
    rows = (
        ("gflop", "GFLOP"),
        ("latency_s", "time (s)"),
        ("peak_rss_mb", "peak RSS (MB)"),
        ("activation_peak_mb", "activation peak (MB)"),
        ("train_step_s", "train step (s)"),
        ("train_peak_rss_mb", "train peak RSS (MB)"),
        ("train_extra_mb", "train extra (MB)"),
    )
    for key, label in rows:
        print(f"{label:<22}{ref[key]:>14.2f}{lean[key]:>14.2f}{lean[key] / ref[key]:>10.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": args.model, "size": args.size, **results}, f, indent=2)


if __name__ == "__main__":
    main()
