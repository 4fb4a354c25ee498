"""``fcnseg predict --checkpoint CKPT INPUTS... --out DIR``: palette masks and overlays."""

from __future__ import annotations

import argparse
import glob
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from ...data.folder import IMAGE_SUFFIXES
from ...errors import DataError, FCNError
from ...inference import Segmenter
from ...io import atomic_write, read_image, write_palette_png
from ...viz import overlay, save_grid
from ._common import add_int8_args, add_model_args, calibration_images, load_model_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="segment images (files, folders, globs)")
    add_model_args(p)
    p.add_argument("inputs", nargs="+")
    p.add_argument("--out", required=True)
    p.add_argument("--alpha", type=float, default=0.5, help="overlay opacity")
    p.add_argument("--probs", action="store_true", help="also write class probabilities as .npy (not with --tile)")
    p.add_argument("--tile", type=int, help="sliding-window inference in tiles of this size (huge images)")
    p.add_argument("--overlap", type=int, default=128, help="tile overlap in pixels")
    p.add_argument("--flip", action="store_true", help="mirror test-time augmentation")
    p.add_argument("--scales", type=float, nargs="+", default=[1.0], help="multi-scale test-time augmentation")
    p.add_argument("--grid", action="store_true", help="also write image | prediction figures with a class legend")
    p.add_argument(
        "--engine",
        choices=["torch", "onnxruntime"],
        default="torch",
        help="onnxruntime: the fast fp32 CPU path (the exported graph, kept beside the checkpoint as CKPT.onnx)",
    )
    p.add_argument(
        "--int8",
        action="store_true",
        help="run the int8 model (onnxruntime) kept beside the checkpoint as CKPT.int8.onnx; made on first use",
    )
    add_int8_args(p)
    p.set_defaults(func=run)


def expand_inputs(items: list[str]) -> list[Path]:
    """Files, folders (their images) and globs, in order, without duplicates."""
    out: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            out += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        elif any(ch in item for ch in "*?["):
            out += [Path(p) for p in sorted(glob.glob(item))]
        else:
            out.append(path)
    seen: set[Path] = set()
    return [p for p in out if not (p in seen or seen.add(p))]


def run(args: argparse.Namespace) -> int:
    model, info = load_model_args(args)
    from ...engine.checkpoint import preprocessing_of

    pre = preprocessing_of(info)
    if args.int8 or args.engine == "onnxruntime":
        model = _onnx_engine(args, model, info)
    seg = Segmenter(model, preprocessing=pre)
    classes = info.classes
    out = Path(args.out)
    inputs = expand_inputs(args.inputs)
    if not inputs:
        raise DataError(f"no images found in {' '.join(args.inputs)}")
    failed = 0
    scales = tuple(args.scales)
    for path in tqdm(inputs, desc="predict", disable=len(inputs) < 2):
        try:
            image = read_image(path)
            probs = None
            if args.probs and not args.tile:  # one forward pass gives both the probabilities and the labels
                probs = seg.probabilities(image, flip=args.flip, scales=scales)
                labels = _argmax(probs)
            else:
                labels = seg.predict(image, tile=args.tile, overlap=args.overlap, flip=args.flip, scales=scales)
        except FCNError as e:
            tqdm.write(f"skipped: {e}", file=sys.stderr)  # on its own line, not inside the progress bar
            failed += 1
            continue
        label_maps = labels if isinstance(labels, dict) else {"": labels}
        prob_maps = probs if isinstance(probs, dict) else {"": probs}
        for head, mask in label_maps.items():
            stem = f"{path.stem}_{head}" if head else path.stem
            write_palette_png(out / f"{stem}.png", mask, _palette())
            with atomic_write(out / f"{stem}_overlay.jpg") as f:
                Image.fromarray(overlay(image, mask, alpha=args.alpha)).save(f, format="JPEG", quality=92)
            if prob_maps.get(head) is not None:
                with atomic_write(out / f"{stem}_probs.npy") as f:
                    np.save(f, prob_maps[head].cpu().numpy().astype(np.float16))
            if args.grid:
                save_grid(out / f"{stem}_grid.png", [[image, mask]], titles=["image", "prediction"], classes=classes)
    print(f"wrote {len(inputs) - failed} prediction(s) to {out}" + (f"; {failed} input(s) failed" if failed else ""))
    return 1 if failed else 0


def _argmax(probs: Any) -> Any:
    if isinstance(probs, dict):
        return {k: _argmax(v) for k, v in probs.items()}
    return probs.argmax(0).to(torch.uint8).cpu().numpy()


def _palette() -> np.ndarray:
    from ...data.base import voc_palette

    return voc_palette()


def _onnx_engine(args: argparse.Namespace, model: Any, info: Any) -> Any:
    """The onnxruntime module for the checkpoint (fp32, or int8 with ``--int8``), made once and cached."""
    from ...export import export_onnx
    from ...export.int8 import OnnxModule, quantize_int8

    weights = Path(args.checkpoint or args.weights)
    cached = weights.with_name(weights.stem + (".int8.onnx" if args.int8 else ".onnx"))
    if not cached.is_file() or cached.stat().st_mtime < weights.stat().st_mtime:
        print(f"exporting {weights} → {cached} (once)", file=sys.stderr)
        if args.int8:
            quantize_int8(model, cached, calibration_images(args, info))
        else:
            export_onnx(model, cached, external_data=True)
    return OnnxModule(cached, model)
