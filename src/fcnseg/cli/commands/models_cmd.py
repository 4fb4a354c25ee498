"""``fcnseg list`` and ``fcnseg info NAME``."""

from __future__ import annotations

import argparse
from typing import Any

from . import COMMANDS
from ._common import COUNT


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help=COMMANDS["list"][1])
    p.add_argument("pattern", nargs="?", help="glob, e.g. 'fcn8s*'")
    p.set_defaults(func=run_list)
    p = sub.add_parser("info", help=COMMANDS["info"][1])
    p.add_argument("name", help="a registry name, or an fcnseg .safetensors checkpoint")
    p.add_argument("--num-classes", type=COUNT, default=21, help="for a registry name: classes (default 21)")
    p.set_defaults(func=run_info)


def run_list(args: argparse.Namespace) -> int:
    from ...models import list_models, model_summary

    names = list_models(args.pattern)
    width = max((len(n) for n in names), default=0)
    for name in names:
        print(f"{name:<{width}}  {model_summary(name)}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    import torch

    from ...models import get_model

    if args.name.endswith(".safetensors"):
        return _checkpoint_info(args.name)
    with torch.device("meta"):
        model = get_model(args.name, num_classes=args.num_classes)
    _describe(args.name, model)
    return 0


def _checkpoint_info(path: str) -> int:
    import torch

    from ...models import get_model
    from ...runtime.checkpoint import read_info

    info = read_info(path)
    kwargs = {k: v for k, v in info.model_kwargs.items() if v is not None}
    with torch.device("meta"):
        model = get_model(info.arch, **kwargs)
    _describe(f"{path} ({info.arch})", model)
    print(f"  classes ({len(info.classes)}): {', '.join(info.classes)}")
    print(f"  preprocessing:      {info.preprocessing}")
    print(f"  trained steps:      {info.step}, best mean IU {info.best_mean_iu}, fcnseg {info.version}")
    print(f"  trained in:         {info.train_dtype or 'not recorded'}")
    return 0


def _describe(name: str, model: Any) -> None:
    params = sum(p.numel() for p in model.parameters())
    dense = getattr(model, "output_stride", 32)
    shown = f", output stride {dense} (dilated: shift-and-stitch)" if dense != 32 else ""
    print(f"{name}: {params / 1e6:.2f}M trainable parameters, backbone {model.family}, strides {model.strides}{shown}")
    built = ", ".join(f"{k}={v}" for k, v in model.build_args.items() if v is not None)
    print(f"  built with:         {built}")
    print(f"  upsampling kernels: {model.upsample_kernels}")
    print(f"  crop offsets:       {model.crop_offsets}")
