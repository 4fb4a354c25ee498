"""int8 against fp32 on a trained model: held-out mean IU of both, and their speed side by side.

Usage:  python benchmarks/bench_int8_accuracy.py CHECKPOINT [--calibration 32] [--test 300] [--json FILE]

The checkpoint's training set (from its config, eval transforms) gives the calibration images; the
held-out set is SyntheticShapes's ``test`` split at the training size (never seen in training,
calibration or selection). Both models segment the same images; fp32 is onnxruntime's fp32 path
(fcnseg's fastest fp32), and PyTorch eager is timed too. Latency is per image, median.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from fcnseg.data import SyntheticShapes
from fcnseg.data.transforms import eval_transforms
from fcnseg.engine.build import training_images
from fcnseg.engine.checkpoint import load_checkpoint, preprocessing_of
from fcnseg.export import export_onnx
from fcnseg.export.int8 import OnnxModule, quantize_int8
from fcnseg.metrics import ConfusionMatrix


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--calibration", type=int, default=32)
    ap.add_argument("--test", type=int, default=300)
    ap.add_argument("--json")
    args = ap.parse_args()
    model, info = load_checkpoint(args.checkpoint)
    model.eval()
    pre = preprocessing_of(info)
    calib = training_images(info, args.calibration)
    size = info.config["data"]["options"].get("size", 128)
    test = SyntheticShapes(args.test, size, "test", transforms=eval_transforms(pre))
    tmp = Path(tempfile.mkdtemp())
    export_onnx(model, tmp / "fp32.onnx", external_data=True)
    quantize_int8(model, tmp / "int8.onnx", calib)
    runners = {"torch_eager": model, "fp32": OnnxModule(tmp / "fp32.onnx", model),
               "int8": OnnxModule(tmp / "int8.onnx", model)}  # fmt: skip
    k = model.num_classes
    cms = {n: ConfusionMatrix(k) for n in runners}
    times: dict[str, list[float]] = {n: [] for n in runners}
    with torch.inference_mode():
        for i in range(len(test)):
            x, y = test[i]
            x = x[None].float()
            for name, run in runners.items():
                t = time.perf_counter()
                pred = run(x).argmax(1)[0]
                times[name].append(time.perf_counter() - t)
                cms[name].update(pred, torch.as_tensor(y))
    result = {name: {"mean_iu": cms[name].compute()["mean_iu"], "latency_s": statistics.median(times[name])}
              for name in runners}  # fmt: skip
    result["speedup_int8_vs_fp32"] = result["fp32"]["latency_s"] / result["int8"]["latency_s"]
    result["mean_iu_points_lost"] = 100 * (result["fp32"]["mean_iu"] - result["int8"]["mean_iu"])
    print(f"{args.checkpoint}: {len(test)} held-out {size}×{size} scenes, {len(calib)} calibration images")
    for name in runners:
        print(f"  {name:<12} mean IU {100 * result[name]['mean_iu']:6.2f}   {1e3 * result[name]['latency_s']:7.2f} ms")
    print(f"  int8 vs fp32: {result['speedup_int8_vs_fp32']:.2f}× faster, "
          f"{result['mean_iu_points_lost']:+.2f} mean-IU points lost")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
