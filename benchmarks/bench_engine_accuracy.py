"""Every engine × precision against fp32 on a trained model: held-out mean IU, label agreement, speed.

Usage:  python benchmarks/bench_engine_accuracy.py CHECKPOINT [--test 200] [--engines …] [--json FILE]

The accuracy half of issue 17: a reduced precision (bf16, int8) may be chosen by ``--engine auto`` only
past its label-agreement guard; this measures what that costs in mean IU on held-out scenes. The
held-out set is SyntheticShapes's ``test`` split at the training size (never trained on, calibrated on
or selected on); int8 calibrates on the checkpoint's training images as ``fcnseg predict`` does. Each
engine runs through :class:`fcnseg.inference.Segmenter` (the path users run), on the same images, with
the exported graphs in a temporary FCNSEG_HOME. Latency is per image, median.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch

from fcnseg.data import SyntheticShapes, eval_transforms
from fcnseg.inference import Segmenter
from fcnseg.inference.auto import agreement
from fcnseg.inference.engines import ENGINES, unavailable
from fcnseg.metrics import ConfusionMatrix
from fcnseg.runtime.checkpoint import load_checkpoint, preprocessing_of
from fcnseg.runtime.hardware import isa_summary

CPU_ENGINES = tuple(e for e, spec in ENGINES.items() if "cpu" in spec.devices)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--test", type=int, default=200, help="held-out scenes (default 200)")
    ap.add_argument("--engines", nargs="+", default=list(CPU_ENGINES), choices=CPU_ENGINES)
    ap.add_argument("--json")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    os.environ["FCNSEG_HOME"] = str(tmp / "home")  # every engine exported afresh, nothing left behind
    ckpt = Path(shutil.copy(args.checkpoint, tmp / Path(args.checkpoint).name))
    model, info = load_checkpoint(ckpt)
    size = info.config["data"]["options"].get("size", 128)
    test = SyntheticShapes(args.test, size, "test", transforms=eval_transforms(preprocessing_of(info)))
    engines = [e for e in args.engines if unavailable(e, torch.device("cpu"), exportable=True) is None]
    segs = {e: Segmenter(ckpt, engine=e) for e in engines}
    cms = {e: ConfusionMatrix(model.num_classes) for e in engines}
    times: dict[str, list[float]] = {e: [] for e in engines}
    agree: dict[str, list[float]] = {e: [] for e in engines}
    with torch.inference_mode():
        for i in range(len(test)):
            x, y = test[i]
            ref = None
            for e, seg in segs.items():
                t = time.perf_counter()
                scores = seg.engine(x[None].float())
                times[e].append(time.perf_counter() - t)
                ref = scores if ref is None else ref
                agree[e].append(agreement(ref, scores))
                cms[e].update(scores.argmax(1)[0], torch.as_tensor(y))
    base = cms["torch"].compute()["mean_iu"]
    result = {
        "checkpoint": str(args.checkpoint),
        "machine": isa_summary(),
        "test_images": len(test),
        "size": size,
        "engines": {
            e: {
                "mean_iu": cms[e].compute()["mean_iu"],
                "latency_s": statistics.median(times[e]),
                "label_agreement": statistics.fmean(agree[e]),
                "mean_iu_points_lost": 100 * (base - cms[e].compute()["mean_iu"]),
            }
            for e in engines
        },
    }
    print(f"{args.checkpoint}: {len(test)} held-out {size}×{size} scenes; {result['machine']}")
    print(f"  {'engine':<18} {'mean IU':>8} {'points lost':>12} {'agreement':>10} {'ms/image':>9}")
    for e, r in result["engines"].items():
        print(
            f"  {e:<18} {100 * r['mean_iu']:8.2f} {r['mean_iu_points_lost']:+12.2f} "
            f"{100 * r['label_agreement']:9.2f}% {1e3 * r['latency_s']:9.1f}"
        )
    skipped = [e for e in args.engines if e not in engines]
    if skipped:
        print("  not available here: " + ", ".join(skipped))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
