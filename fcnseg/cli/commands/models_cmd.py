"""``fcnseg list`` and ``fcnseg info NAME``."""

from __future__ import annotations

import argparse

import torch

from ...models import get_model, list_models


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list the registered models")
    p.add_argument("pattern", nargs="?", help="glob, e.g. 'fcn8s*'")
    p.set_defaults(func=run_list)
    p = sub.add_parser("info", help="parameters, strides, crop offsets and kernels of a model")
    p.add_argument("name")
    p.add_argument("--num-classes", type=int, default=21)
    p.set_defaults(func=run_info)


def run_list(args: argparse.Namespace) -> int:
    for name in list_models(args.pattern):
        print(name)
    return 0


def run_info(args: argparse.Namespace) -> int:
    with torch.device("meta"):
        model = get_model(args.name, num_classes=args.num_classes)
    params = sum(p.numel() for p in model.parameters())
    print(f"{args.name}: {params / 1e6:.2f}M trainable parameters, backbone {model.family}, strides {model.strides}")
    print(f"  upsampling kernels: {model.upsample_kernels}")
    print(f"  crop offsets:       {model.crop_offsets}")
    return 0
