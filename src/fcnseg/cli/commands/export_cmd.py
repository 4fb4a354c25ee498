"""``fcnseg export --checkpoint CKPT --format onnx --out model.onnx``; ``--format hub --out FOLDER``: a folder to
push to the Hugging Face Hub (the checkpoint and its model card)."""

from __future__ import annotations

import argparse

from . import COMMANDS
from ._common import (
    add_device_arg,
    add_int8_args,
    add_model_args,
    add_overwrite_arg,
    calibration_images,
    device_of,
    load_model_args,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help=COMMANDS["export"][1])
    add_model_args(p)
    p.add_argument(
        "--format",
        choices=["onnx", "hub"],
        default="onnx",
        help="onnx (default), or hub: a folder for the Hugging Face Hub, the checkpoint and a model card "
        "(README.md: metrics, preprocessing, classes, how to load it); push it with huggingface_hub",
    )
    p.add_argument(
        "--out", required=True, help="the .onnx file to write (large weights go beside it); with hub: a new folder"
    )
    p.add_argument("--repo", metavar="OWNER/NAME", help="with --format hub: the repository the model card names")
    p.add_argument(
        "--metrics", help="with --format hub: a metrics.json of fcnseg eval for the card (default: published figures)"
    )
    p.add_argument(
        "--upsampling",
        default="auto",
        metavar="MODE",
        help="how fixed bilinear upsampling is written: auto or grouped (grouped ConvTranspose), dense "
        "(Caffe's), resize (Pad+Resize+Slice where exact: fastest in many deployment runtimes); all "
        "checked equal",
    )
    p.add_argument("--int8", action="store_true", help="write the int8 (static QDQ) model, calibrated on images")
    add_int8_args(p)
    add_device_arg(p, default="cpu")
    add_overwrite_arg(p, "an existing --out file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ...errors import printable
    from ...export import export_onnx
    from ...writes import claim_file

    if args.format == "hub":
        return _hub(args)
    inputs = [p for p in (args.checkpoint, args.weights, getattr(args, "calibration", None)) if p]
    claim_file(args.out, inputs=inputs, overwrite=args.overwrite)  # never over the checkpoint, nor a user's file
    opened = load_model_args(args)
    model, info = opened.model, opened.info
    model = model.to(device_of(args))  # traced, and checked against onnxruntime, on this device
    if args.int8:
        from ...export.int8 import quantize_int8

        path = quantize_int8(model, args.out, calibration_images(args, info))
        source = printable(args.calibration) if args.calibration else "the training set"
        print(f"wrote {printable(path)} (int8 weights and activations, calibrated on {source})")
        return 0
    report = export_onnx(model, args.out, upsampling=args.upsampling)
    print(
        f"wrote {printable(args.out)}; onnxruntime vs PyTorch max |diff| {report['max_abs_diff']:.3g} "
        f"(score range {report['score_range']:.3g})"
    )
    return 0


def _hub(args: argparse.Namespace) -> int:
    """The Hub folder of the checkpoint (or pretrained weights) the command line names."""
    from ...errors import ConfigError
    from ...weights.card import write_hub_folder
    from ._common import spec_of

    spec = spec_of(args)
    if not spec.checkpoint:
        raise ConfigError(
            "--format hub takes a checkpoint (--checkpoint CKPT, or pretrained weights such as --weights "
            "fcn8s_vgg16.voc); convert a bare weights file with 'fcnseg convert' first"
        )
    out = write_hub_folder(spec.checkpoint, args.out, name=args.repo, metrics=args.metrics)
    repo = args.repo or f"OWNER/{out.name}"
    print(
        f"wrote {out}/ (model.safetensors, README.md); push it with huggingface_hub's command line: "
        f"hf upload {repo} {out} . ; then load it anywhere with --weights hf://{repo}"
    )
    return 0
