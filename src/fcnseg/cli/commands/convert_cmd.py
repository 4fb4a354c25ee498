"""``fcnseg convert torchfcn CKPT.pth [--net NAME] --out W.safetensors``."""

from __future__ import annotations

import argparse
from pathlib import Path

from ...errors import CheckpointError, first_line, printable
from . import COMMANDS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help=COMMANDS["convert"][1])
    csub = p.add_subparsers(dest="source", required=True, metavar="SOURCE")
    t = csub.add_parser("torchfcn", help="a torchfcn state dict or checkpoint (.pth), loaded with weights_only")
    t.add_argument("path", help="the torchfcn .pth file")
    t.add_argument(
        "--net", help="fcn32s_vgg16, fcn16s_vgg16, fcn8s_vgg16 or fcn8s_atonce_vgg16 (default: from the keys)"
    )
    t.add_argument("--out", required=True, help="output .safetensors checkpoint")
    t.add_argument("--overwrite", action="store_true", help="replace an existing --out file (never the input)")
    t.set_defaults(func=run_torchfcn)
    c = csub.add_parser("caffe", help="a reference .caffemodel (read without Caffe)")
    c.add_argument("path", help="the .caffemodel file")
    c.add_argument(
        "--net",
        required=True,
        help="which reference net it is: voc-fcn32s, voc-fcn16s, voc-fcn8s, "
        "voc-fcn8s-atonce, voc-fcn-alexnet, siftflow-fcn{32,16,8}s, nyud-fcn32s-{color,hha,color-hha}, "
        "pascalcontext-fcn{32,16,8}s, or the ILSVRC trunks vgg16-ilsvrc, caffenet",
    )
    c.add_argument("--out", required=True, help="output .safetensors (checkpoint, or backbone weights for ILSVRC nets)")
    c.add_argument("--width", type=float, default=1.0, help=argparse.SUPPRESS)  # scaled-down test files
    c.add_argument("--overwrite", action="store_true", help="replace an existing --out file (never the input)")
    c.set_defaults(func=run_caffe)


def _claim_out(args: argparse.Namespace, *, checkpoint: bool) -> str:
    """The file ``--out`` names (``NAME.safetensors`` for a checkpoint), claimed: never the input file nor inside an
    input folder, and an existing file only with ``--overwrite``."""
    from ...writes import claim_file

    out = Path(args.out.removesuffix(".safetensors")).with_suffix(".safetensors") if checkpoint else Path(args.out)
    claim_file(out, inputs=[args.path], overwrite=args.overwrite)  # the file save_checkpoint names
    return str(out)


def run_caffe(args: argparse.Namespace) -> int:
    from safetensors.torch import save

    from ...convert import BACKBONE_NETS, convert_caffe, convert_caffe_backbone
    from ...io import atomic_write
    from ...runtime.checkpoint import save_checkpoint

    _claim_out(args, checkpoint=args.net not in BACKBONE_NETS)
    if args.net in BACKBONE_NETS:
        state = convert_caffe_backbone(args.path)
        with atomic_write(args.out) as f:
            f.write(save({k: v.contiguous() for k, v in state.items()}, metadata={"source": "caffe", "net": args.net}))
        print(
            f"converted {args.path} ({args.net}, {len(state)} tensors) → {args.out}; use it as model.backbone_weights"
        )
        return 0
    model, info = convert_caffe(args.path, args.net, width=args.width)
    out = save_checkpoint(args.out.removesuffix(".safetensors"), model, info)
    print(f"converted {printable(args.path)} ({args.net} → {info.arch}) → {printable(out)}")
    return 0


def torchfcn_net(state: dict) -> str:
    """FCN-32s/16s/8s from which score layers exist (at-once FCN-8s has FCN-8s's keys: give --net)."""
    if "score_pool3.weight" in state:
        return "fcn8s_vgg16"
    return "fcn16s_vgg16" if "score_pool4.weight" in state else "fcn32s_vgg16"


def run_torchfcn(args: argparse.Namespace) -> int:
    import torch

    from ...data.classes import default_classes
    from ...files import open_regular
    from ...models import get_model
    from ...preprocessing import CAFFE_VOC
    from ...runtime.checkpoint import CheckpointInfo, load_into, model_kwargs, save_checkpoint
    from ...weights import convert_torchfcn

    _claim_out(args, checkpoint=True)
    try:
        with open_regular(args.path, what="torchfcn file", error=CheckpointError) as f:
            raw = torch.load(f, map_location="cpu", weights_only=True)
    except CheckpointError:
        raise
    except Exception as e:
        raise CheckpointError(f"{args.path}: cannot load safely ({type(e).__name__}: {first_line(e)})") from None
    if not isinstance(raw, dict):
        raise CheckpointError(f"{args.path}: expected a state dict or checkpoint dict, got {type(raw).__name__}")
    state = convert_torchfcn(raw)
    net = args.net or torchfcn_net(state)
    model = get_model(net, num_classes=int(state["score_fr.weight"].shape[0]))
    load_into(model, state, args.path)
    classes = default_classes(model.num_classes)
    info = CheckpointInfo(
        arch=net, model_kwargs=model_kwargs(model), classes=classes, preprocessing=CAFFE_VOC.to_dict()
    )
    out = save_checkpoint(args.out.removesuffix(".safetensors"), model, info)
    print(f"converted {printable(args.path)} ({net}, {model.num_classes} classes) → {printable(out)}")
    return 0
