"""What a user waits for: process start to masks, ``--engine auto`` against ``--engine torch``, side by side.

Usage:  python benchmarks/bench_first_mask.py [--model fcn8s_vgg16] [--counts 1 10 100] [--json FILE]

For each job size (1, 10, 100 images of mixed phone-photo-like sizes, the same images for every engine), times
``fcnseg predict`` from process start to the last mask: ``--engine torch``; ``auto`` with a fresh FCNSEG_HOME
(nothing cached: a first use); ``auto`` again with the cache the fresh run left (warm). Runs alternate engines
(torch, auto fresh, auto warm) so that a machine's drift slows each alike, and print ratios to torch. Then the start-up
of the command line (``fcnseg --help``, ``fcnseg predict --help``, an argument error) and one ``predict`` of a 500×375
image with a small checkpoint (the demo's kind: 1/16-width FCN-8s). The model's weights are random unless
``--checkpoint`` names a trained one; speed does not depend on them, but auto's accuracy guard does: a random net's
logits nearly tie at many pixels, where bf16 flips the label (99.3 % agreement measured, under the 99.5 % guard),
so auto rightly keeps fp32 PyTorch for it. Pass a trained checkpoint to time what a user's trained model gets.
The checkpoint is written once, outside FCNSEG_HOME.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

#: mixed sizes (width, height), as a folder of photos resized for the web has them
SIZES = [(500, 375), (375, 500), (500, 334), (480, 360), (512, 384), (500, 281), (400, 400), (500, 500)]


def _photos(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        w, h = SIZES[i % len(SIZES)]
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / f"p{i:03d}.jpg", quality=90)
    return folder


def _checkpoint(path: Path, model: str, width: float) -> Path:
    import torch

    import fcnseg
    from fcnseg.runtime.checkpoint import CheckpointInfo, model_kwargs, save_checkpoint

    torch.manual_seed(0)
    net = fcnseg.get_model(model, num_classes=21, width=width)
    with torch.no_grad():
        for name in net.score_layer_names():
            getattr(net, name).weight.normal_(0, 0.01)
    return save_checkpoint(path, net, CheckpointInfo(arch=model, model_kwargs=model_kwargs(net)))


def _timed(args: list[str], home: Path) -> float:
    env = {**os.environ, "FCNSEG_HOME": str(home)}
    env.pop("FCNSEG_ENGINE", None)
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "fcnseg", *args], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t
    if proc.returncode not in (0, 2):
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr[-1500:]}")
    return seconds


def jobs(ckpt: Path, counts: list[int], tmp: Path) -> dict[str, dict[str, float]]:
    """Process start to the last mask per job size: torch, auto with an empty cache, auto with its cache."""
    out: dict[str, dict[str, float]] = {}
    for n in counts:
        photos = _photos(tmp / f"photos{n}", n)
        home = tmp / f"home{n}"
        times = {}
        for name, engine, fresh in (
            ("torch", ["--engine", "torch"], True),
            ("auto, fresh cache", [], True),
            ("auto, warm cache", [], False),
        ):
            if fresh and home.exists():
                shutil.rmtree(home)
            dest = tmp / f"out{n}-{len(times)}"
            times[name] = _timed(["predict", "--checkpoint", str(ckpt), str(photos), "--out", str(dest), *engine], home)
            print(f"{n:>4} image(s)  {name:<18} {times[name]:8.1f} s", flush=True)
        times["auto fresh / torch"] = times["auto, fresh cache"] / times["torch"]
        times["auto warm / torch"] = times["auto, warm cache"] / times["torch"]
        out[str(n)] = times
    return out


def startup(tmp: Path) -> dict[str, float]:
    """The command line's start: help, a command's help, an argument error (median of 5 each)."""
    cases = {
        "fcnseg --help": ["--help"],
        "fcnseg predict --help": ["predict", "--help"],
        "argument error": ["predict", "--alpha", "2", "x.png"],
    }
    out = {}
    for name, args in cases.items():
        out[name] = float(np.median([_timed(args, tmp / "home-start") for _ in range(5)]))
        print(f"{name:<24} {out[name]:.3f} s", flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="fcn8s_vgg16")
    p.add_argument("--counts", type=int, nargs="+", default=[1, 10, 100])
    p.add_argument("--checkpoint", help="a trained checkpoint to time (default: random weights; see above)")
    p.add_argument("--json")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fcnseg-first-mask-"))
    from fcnseg.runtime.hardware import isa_summary

    result = {"machine": isa_summary(), "model": args.model, "sizes": SIZES, "startup": startup(tmp)}
    small = _checkpoint(tmp / "small", "fcn8s_vgg16", 1 / 16)
    one = _photos(tmp / "one-500x375", 1)
    result["predict_small_500x375_s"] = float(
        np.median(
            [
                _timed(
                    ["predict", "--checkpoint", str(small), str(one), "--out", str(tmp / f"small{i}")], tmp / "h-small"
                )
                for i in range(3)
            ]
        )
    )
    print(f"predict, small checkpoint, one 500×375 image: {result['predict_small_500x375_s']:.2f} s", flush=True)
    ckpt = Path(args.checkpoint) if args.checkpoint else _checkpoint(tmp / "model", args.model, 1.0)
    result["checkpoint"] = str(args.checkpoint or f"{args.model}, random weights")
    result["jobs"] = jobs(ckpt, args.counts, tmp)
    for n, t in result["jobs"].items():
        print(f"{n:>4} image(s): auto fresh {t['auto fresh / torch']:.2f}× torch, warm {t['auto warm / torch']:.2f}×")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
