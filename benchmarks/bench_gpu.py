"""One run that measures fcnseg where its users run it: inference, predict, training and evaluation on a GPU.

Usage:  python benchmarks/bench_gpu.py [--device auto] [--json FILE] [--smoke]

* inference: FCN-8s VGG16 at 500×500, images/s at batch 1 and 16 for fp32, TF32, bf16 autocast, bf16 +
  channels_last and bf16 + channels_last + ``torch.compile`` (``fcnseg.inference.optimize_for_inference``);
  every timed call ends with a device synchronisation;
* predict: ``fcnseg predict --batch-size 16`` end to end (process start, model load, JPEG decode, writes)
  on a folder of generated 500×375 JPEGs, images/s of the whole command;
* training with the real data loader (``fcnseg.train.trainer.fit``) on generated data in the folder
  layout: the reference recipe (batch 1, images of varying sizes, summed loss) and the modern recipe
  (batch 8 crops of 320, normalised loss, AMP); images/s after warm-up and the share of the step time
  spent waiting for data (the time ``next(batch)`` blocks);
* evaluation (``fcnseg.runtime.evaluation.evaluate``, whole images, batched by size, bf16): images/s;
* the two training recipes again on 2 processes (``torchrun --nproc_per_node 2``) when 2 GPUs exist.

Prints a Markdown table and writes JSON. ``--smoke`` runs the same code on a tiny net (1/16 width, 64 px,
a few images and steps; compile left out) in seconds on a CPU: the test suite runs it.
"""

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from PIL import Image

import fcnseg
from fcnseg.runtime.hardware import resolve_device


class Scale(NamedTuple):
    width: float = 1.0
    size: int = 500
    batches: tuple[int, ...] = (1, 16)
    repeats: int = 20
    predict_images: int = 128
    train_images: int = 64
    train_steps: int = 40
    warmup: int = 5
    crop: int = 320
    modern_batch: int = 8
    compile: bool = True


FULL = Scale()
SMOKE = Scale(
    width=1 / 16,
    size=64,
    batches=(1, 2),
    repeats=1,
    predict_images=4,
    train_images=6,
    train_steps=4,
    warmup=1,
    crop=48,
    modern_batch=2,
    compile=False,
)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def _tf32(on: bool):
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = on
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


VARIANTS = {  # name: (optimize_for_inference kwargs, TF32)
    "fp32": ({"dtype": None, "channels_last": False}, False),
    "tf32": ({"dtype": None, "channels_last": False}, True),
    "bf16": ({"dtype": "bfloat16", "channels_last": False}, False),
    "bf16+channels_last": ({"dtype": "bfloat16", "channels_last": True}, False),
    "bf16+channels_last+compiled": ({"dtype": "bfloat16", "channels_last": True, "compile": True}, False),
}


def inference(device: torch.device, scale: Scale) -> dict[str, Any]:
    """images/s of FCN-8s VGG16 per variant and batch (fixed size: one cuDNN plan / one compiled graph)."""
    from fcnseg.inference import optimize_for_inference

    out: dict[str, Any] = {}
    for name, (kwargs, tf32) in VARIANTS.items():
        if kwargs.get("compile") and not scale.compile:
            out[name] = "skipped (smoke run)"
            continue
        model = fcnseg.get_model("fcn8s_vgg16", num_classes=21, width=scale.width)
        fast = optimize_for_inference(model, device=device, buckets=(scale.size,), **kwargs)
        for batch in scale.batches:
            x = torch.randn(batch, 3, scale.size, scale.size, device=device)
            with _tf32(tf32), torch.inference_mode():
                for _ in range(2):
                    fast(x)  # warm-up: cuDNN plans, compilation
                _sync(device)
                t = time.perf_counter()
                for _ in range(scale.repeats):
                    fast(x)
                _sync(device)
            out[f"{name}/batch{batch}"] = batch * scale.repeats / (time.perf_counter() - t)
        del model, fast
    return out


def _checkpoint(folder: Path, scale: Scale) -> Path:
    from fcnseg.preprocessing import IMAGENET
    from fcnseg.runtime.checkpoint import CheckpointInfo, model_kwargs, save_checkpoint

    model = fcnseg.get_model("fcn8s_vgg16", num_classes=21, width=scale.width)
    info = CheckpointInfo(
        arch=model.arch,
        model_kwargs=model_kwargs(model),
        classes=[f"class_{i}" for i in range(21)],
        preprocessing=IMAGENET.to_dict(),
    )
    return save_checkpoint(folder / "bench", model, info)


def predict(device: torch.device, scale: Scale, tmp: Path) -> dict[str, Any]:
    """``fcnseg predict --batch-size 16`` on a folder of JPEGs, timed as a whole command."""
    rng = np.random.default_rng(0)
    images = tmp / "jpegs"
    images.mkdir()
    h, w = scale.size * 3 // 4, scale.size
    for i in range(scale.predict_images):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(images / f"{i:05d}.jpg", quality=90)
    ckpt = _checkpoint(tmp, scale)
    cmd = [
        sys.executable,
        "-m",
        "fcnseg",
        "predict",
        "--checkpoint",
        str(ckpt),
        str(images),
        "--out",
        str(tmp / "masks"),
        "--device",
        str(device),
        "--batch-size",
        str(max(scale.batches)),
    ]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode:
        raise SystemExit(f"fcnseg predict failed: {proc.stderr.strip()[-1500:]}")
    n = scale.predict_images
    return {"images": n, "size": f"{w}x{h}", "wall_s": wall, "images_per_s": n / wall}


def make_folder_data(root: Path, n: int, size: int, seed: int = 0) -> Path:
    """``root/images/*.jpg`` + ``root/masks/*.png`` of varying sizes (0.6–1× ``size``), 21 classes."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        h, w = (int(size * rng.uniform(0.6, 1.0)) for _ in range(2))
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / "images" / f"{i:04d}.jpg")
        mask = np.repeat(np.repeat(rng.integers(0, 21, (h // 8 + 1, w // 8 + 1)), 8, 0), 8, 1)[:h, :w]
        Image.fromarray(mask.astype(np.uint8)).save(root / "masks" / f"{i:04d}.png")
    return root


def recipe(name: str, scale: Scale, data: Path, device: torch.device) -> list[str]:
    """``--set`` overrides of the reference or the modern recipe on the generated folder data."""
    common = [
        f"model.width={scale.width}",
        "data.name=folder",
        f"data.root={data}",
        f"data.options={{classes: [{', '.join(f'c{i}' for i in range(21))}]}}",
        "data.preprocessing=imagenet",
        f"train.max_iter={scale.train_steps}",
        f"train.log_every={scale.train_steps}",
        f"train.eval_every={10**9}",
        f"train.checkpoint_every={10**9}",
        "eval.max_images=1",
        "eval.grid_images=0",
        f"train.device={device}",
    ]
    if name == "reference":  # batch 1, whole images of varying sizes, summed loss
        return [*common, "data.batch_size=1", "train.lr=1e-10", "train.momentum=0.99"]
    return [
        *common,
        f"data.batch_size={scale.modern_batch}",
        f"data.crop_size={scale.crop}",
        "data.flip=true",
        "data.scale_range=[0.5, 2.0]",
        "train.normalize=true",
        "train.lr=0.01",
        "train.momentum=0.9",
        "train.schedule=poly",
        f"train.amp={str(device.type == 'cuda').lower()}",
    ]


def train(name: str, scale: Scale, data: Path, device: torch.device, tmp: Path) -> dict[str, Any]:
    """Training images/s after warm-up and the share of it spent blocked on the data loader."""
    from fcnseg.config import load_config
    from fcnseg.train import step, trainer

    waits: list[float] = []
    stamps: list[float] = []
    original = step._next_batch

    def timed(run: Any) -> Any:
        t = time.perf_counter()
        batch = original(run)
        waits.append(time.perf_counter() - t)
        stamps.append(time.perf_counter())
        return batch

    step._next_batch = timed
    try:
        cfg = load_config(None, recipe(name, scale, data, device))
        trainer.fit(cfg, tmp / f"run-{name}-{os.getpid()}", progress=False)
    finally:
        step._next_batch = original
    world = int(os.environ.get("WORLD_SIZE", "1"))
    k = scale.warmup
    span = stamps[-1] - stamps[k]
    images = (len(stamps) - 1 - k) * cfg.data.batch_size * world
    return {
        "batch_per_process": cfg.data.batch_size,
        "processes": world,
        "images_per_s": images / span,
        "data_wait_share": sum(waits[k + 1 :]) / span,
    }


def evaluation(scale: Scale, data: Path, device: torch.device) -> dict[str, Any]:
    from fcnseg.data import get_dataset
    from fcnseg.data.transforms import eval_transforms
    from fcnseg.preprocessing import IMAGENET
    from fcnseg.runtime.evaluation import evaluate
    from fcnseg.runtime.hardware import inference_dtype
    from fcnseg.train.data_path import auto_workers

    ds = get_dataset(
        "folder", str(data), "train", transforms=eval_transforms(IMAGENET), classes=[f"c{i}" for i in range(21)]
    )
    model = fcnseg.get_model("fcn8s_vgg16", num_classes=21, width=scale.width).to(device)
    kwargs = {"device": device, "batch_size": 8, "workers": auto_workers(device), "dtype": inference_dtype(device)}
    evaluate(model, ds, 21, max_images=2, **kwargs)  # warm-up
    _sync(device)
    t = time.perf_counter()
    evaluate(model, ds, 21, **kwargs)
    _sync(device)
    return {"images": len(ds), "images_per_s": len(ds) / (time.perf_counter() - t), "dtype": str(kwargs["dtype"])}


def two_processes(scale_name: str, data: Path, device: torch.device) -> dict[str, Any]:
    """Both training recipes under ``torchrun --nproc_per_node 2`` (this script's ``--only-train``)."""
    if device.type != "cuda" or torch.cuda.device_count() < 2:
        return {"skipped": f"needs 2 CUDA devices; this machine has {torch.cuda.device_count()}"}
    out = Path(tempfile.mkdtemp()) / "ddp.json"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        __file__,
        "--only-train",
        str(data),
        "--json",
        str(out),
        "--device",
        "cuda",
    ] + (["--smoke"] if scale_name == "smoke" else [])
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        return {"failed": proc.stderr.strip()[-1500:]}
    return json.loads(out.read_text())


def table(r: dict[str, Any]) -> str:
    lines = [
        f"{r['device_name']}, torch {r['torch']}, {'smoke' if r['smoke'] else 'full'} scale",
        "",
        "| measurement | images/s | note |",
        "|---|---:|---|",
    ]
    for k, v in r["inference"].items():
        lines.append(f"| inference {k} | {v:.1f} | |" if isinstance(v, float) else f"| inference {k} | | {v} |")
    p = r["predict"]
    lines.append(f"| fcnseg predict end to end | {p['images_per_s']:.1f} | {p['images']} JPEGs {p['size']} |")
    for key, t in [(k, v) for k, v in r.items() if k.startswith("train")] + list(r.get("two_processes", {}).items()):
        if isinstance(t, dict) and "images_per_s" in t:
            lines.append(
                f"| {key} ({t['processes']} proc, batch {t['batch_per_process']}) | {t['images_per_s']:.1f} | "
                f"data wait {100 * t['data_wait_share']:.1f}% of step time |"
            )
    e = r["evaluation"]
    lines.append(f"| evaluation | {e['images_per_s']:.1f} | {e['images']} images, {e['dtype']} |")
    if "skipped" in r.get("two_processes", {}):
        lines.append(f"| 2 processes | | {r['two_processes']['skipped']} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--json")
    p.add_argument("--smoke", action="store_true", help="tiny net, seconds on a CPU (the test suite's run)")
    p.add_argument("--only-train", metavar="DATA", help=argparse.SUPPRESS)  # the torchrun child
    args = p.parse_args()
    scale = SMOKE if args.smoke else FULL
    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory(prefix="fcnseg-bench-gpu-") as tmp_name:
        tmp = Path(tmp_name)
        if args.only_train:
            from fcnseg.runtime.hardware import local_device

            device = local_device(args.device, int(os.environ.get("WORLD_SIZE", "1")))
            data = Path(args.only_train)
            result = {f"train {n} ×2": train(n, scale, data, device, tmp) for n in ("reference", "modern")}
            if os.environ.get("RANK", "0") == "0":
                Path(args.json).write_text(json.dumps(result, indent=2))
            return
        data = make_folder_data(tmp / "data", scale.train_images, scale.size)
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({os.cpu_count()} cores)"
        r: dict[str, Any] = {
            "device": str(device),
            "device_name": name,
            "torch": torch.__version__,
            "smoke": args.smoke,
        }
        r["inference"] = inference(device, scale)
        r["predict"] = predict(device, scale, tmp)
        r["train reference"] = train("reference", scale, data, device, tmp)
        r["train modern"] = train("modern", scale, data, device, tmp)
        r["evaluation"] = evaluation(scale, data, device)
        r["two_processes"] = two_processes("smoke" if args.smoke else "full", data, device)
    print(table(r))
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2))


if __name__ == "__main__":
    main()
