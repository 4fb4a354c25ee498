"""``fcnseg export --checkpoint CKPT --format onnx --out model.onnx``."""

from __future__ import annotations

import argparse

from ...export import export_onnx
from ._common import add_model_args, load_model_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export to ONNX (dynamic batch, height, width), checked with onnxruntime")
    add_model_args(p)
    p.add_argument("--format", choices=["onnx"], default="onnx")
    p.add_argument("--out", required=True)
    p.add_argument(
        "--upsampling",
        choices=["auto", "dense", "grouped", "resize"],
        default="auto",
        help="how fixed bilinear upsampling is written: grouped ConvTranspose (auto), Caffe's dense one, or "
        "Pad+Resize+Slice where exact (fastest in many deployment runtimes); all checked equal",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    model, _ = load_model_args(args)
    report = export_onnx(model, args.out, upsampling=args.upsampling)
    print(
        f"wrote {args.out}; onnxruntime vs PyTorch max |diff| {report['max_abs_diff']:.3g} "
        f"(score range {report['score_range']:.3g})"
    )
    return 0
