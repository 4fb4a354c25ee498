"""Throughput of ``fcnseg predict`` on a folder of 500×375 JPEGs: 1 process, 2 torchrun processes, Ray with 2 workers.

Usage:  python benchmarks/bench_predict.py [--model fcn8s_resnet18] [--width 1.0] [--images 32] [--json F]

All three runs segment the same folder with the same checkpoint (random weights: time does not depend
on them), side by side in one run, each as the command a user types, so the wall time includes process
start, model load and (for Ray) the cluster start. Reports images/s end to end and from the manifest's
per-image seconds (steady state), each with its ratio to one process, and the per-image time split of one
process (decode, preprocess, model, write) measured in this process on the same images.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import fcnseg
from fcnseg.runtime.checkpoint import CheckpointInfo, model_kwargs, save_checkpoint


def _folder(root: Path, n: int) -> Path:
    rng = np.random.default_rng(0)
    folder = root / "photos"
    folder.mkdir()
    for i in range(n):  # smooth random colour fields compress like photos, not like noise
        small = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
        Image.fromarray(small).resize((500, 375), Image.BICUBIC).save(folder / f"{i:04d}.jpg", quality=90)
    return folder


def _checkpoint(root: Path, name: str, width: float) -> Path:
    model = fcnseg.get_model(name, num_classes=21, width=width)
    classes = [f"c{i}" for i in range(21)]
    info = CheckpointInfo(arch=model.arch, model_kwargs=model_kwargs(model), classes=classes)
    return save_checkpoint(root / "model", model, info)


def _run(cmd: list[str], out: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:6])} … failed:\n{done.stderr[-2000:]}")
    seconds = [json.loads(line)["seconds"] for line in (out / "manifest.jsonl").read_text().splitlines()]
    return {"wall_s": wall, "images": len(seconds), "busy_s": sum(seconds)}


def _split(checkpoint: Path, folder: Path, out: Path) -> dict[str, float]:
    """Median per-image milliseconds of each stage of one process's loop, on the same images."""
    from fcnseg.inference import Segmenter
    from fcnseg.inference.batch import BatchOptions, predict_job
    from fcnseg.inference.layout import Job
    from fcnseg.io import read_image

    seg = Segmenter(checkpoint)
    stages: dict[str, list[float]] = {"decode": [], "preprocess": [], "model": [], "write": []}
    for path in sorted(folder.glob("*.jpg")):
        t0 = time.perf_counter()
        rgb = read_image(path)
        t1 = time.perf_counter()
        x = seg.preprocessing(torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))).unsqueeze(0)
        t2 = time.perf_counter()
        with torch.inference_mode():
            seg.model(x).argmax(1)
        t3 = time.perf_counter()
        predict_job(seg, Job(path, path.stem), out, BatchOptions(), seg.classes)
        t4 = time.perf_counter()
        stages["decode"].append(t1 - t0)
        stages["preprocess"].append(t2 - t1)
        stages["model"].append(t3 - t2)
        stages["write"].append(max(0.0, (t4 - t3) - (t3 - t0)))  # predict_job decodes and runs the model again
    return {k: 1000 * statistics.median(v) for k, v in stages.items()}


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="fcn8s_resnet18")
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--images", type=int, default=32)
    ap.add_argument("--no-ray", action="store_true", help="skip the Ray run (no fcnseg[ray] installed)")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder, ckpt = _folder(root, args.images), _checkpoint(root, args.model, args.width)
        base = [sys.executable, "-m", "fcnseg", "predict", "--checkpoint", str(ckpt), str(folder), "--out"]
        runs = {"1 process": _run([*base, str(root / "one")], root / "one")}
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m"]
        runs["torchrun, 2 processes"] = _run([*torchrun, *base[2:], str(root / "two")], root / "two")
        if not args.no_ray:
            runs["Ray Data, 2 workers"] = _run([*base, str(root / "ray"), "--ray", "--num-workers", "2"], root / "ray")
        split = _split(ckpt, folder, root / "split")
    one = runs["1 process"]
    rows = {}
    for name, r in runs.items():
        e2e, steady = r["images"] / r["wall_s"], r["images"] / r["busy_s"] * (1 if name == "1 process" else 2)
        rows[name] = {
            "images_per_s": e2e,
            "ratio": e2e / (one["images"] / one["wall_s"]),
            "steady_images_per_s": steady,
            "steady_ratio": steady / (one["images"] / one["busy_s"]),
            **r,
        }
    result = {
        "machine": f"{_cpu()}, {os.cpu_count()} CPUs",
        "model": f"{args.model} width {args.width}",
        "images": args.images,
        "runs": rows,
        "split_ms": split,
    }
    print(f"{args.images} JPEGs 500×375, {result['model']}, {result['machine']}")
    print(f"{'run':24} {'images/s':>9} {'ratio':>6} {'steady/s':>9} {'ratio':>6} {'wall s':>7}")
    for name, r in rows.items():
        print(
            f"{name:24} {r['images_per_s']:9.2f} {r['ratio']:6.2f} {r['steady_images_per_s']:9.2f} "
            f"{r['steady_ratio']:6.2f} {r['wall_s']:7.1f}"
        )
    print("one process, per image (median ms): " + ", ".join(f"{k} {v:.1f}" for k, v in split.items()))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
