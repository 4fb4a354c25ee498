"""A fetched file as what fcnseg loads: an FCN with its checkpoint info, or a trunk's state dict.

Caffe files go through :mod:`fcnseg.convert.caffe` (every blob checked against the net); a Caffe file without a
published checksum is first checked by size (at least 4 bytes for every weight the net needs, the fixed
upsampling kernels aside), before anything is parsed. ``.pth`` files are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..convert.caffe import REFERENCE_NETS, convert_caffe, convert_caffe_backbone
from ..errors import CheckpointError, first_line
from ..models import get_model
from ..runtime.checkpoint import CheckpointInfo, load_into, model_kwargs
from .records import Weights
from .torchfcn import convert_torchfcn

__all__ = ["backbone_state", "fcn_model", "needed_bytes"]


def needed_bytes(net: str, width: float = 1.0) -> int:
    """Bytes the weights of reference net ``net`` take at least in a ``.caffemodel`` (float32, upsampling aside)."""
    ref = REFERENCE_NETS[net]
    kwargs: dict[str, Any] = {"width": width}
    if ref.heads:
        kwargs["heads"] = ref.heads
    else:
        kwargs["num_classes"] = len(ref.classes)
    if ref.streams:
        kwargs["streams"] = ref.streams
    elif ref.in_channels != 3:
        kwargs["in_channels"] = ref.in_channels
    with torch.device("meta"):
        model = get_model(ref.arch, **kwargs)
    state = model.state_dict()
    return 4 * sum(v.numel() for k, v in state.items() if not k.split(".")[0].startswith("upscore"))


def _torch_file(path: Path) -> dict[str, Any]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle and zip errors of every kind: refuse the file, name it
        raise CheckpointError(f"{path}: cannot load safely ({type(e).__name__}: {first_line(e)})") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a state dict, got {type(obj).__name__}")
    return obj


def fcn_model(entry: Weights, raw: Path) -> tuple[Any, CheckpointInfo]:
    """The FCN of an FCN entry, its weights loaded from ``raw`` (checked against the net), and its info."""
    if entry.format == "caffe":
        need = needed_bytes(str(entry.net), entry.width)
        have = raw.stat().st_size
        if have < need:
            raise CheckpointError(
                f"{raw}: {have} bytes, but {entry.net}'s weights alone take {need}: a truncated or different file"
            )
        return convert_caffe(raw, str(entry.net), width=entry.width)
    state = convert_torchfcn(_torch_file(raw))
    model = get_model(entry.model, num_classes=len(entry.class_names()), width=entry.width)
    load_into(model, state, raw)
    info = CheckpointInfo(
        arch=entry.model,
        model_kwargs=model_kwargs(model),
        classes=list(entry.class_names()),
        preprocessing=entry.preprocess.to_dict(),
    )
    return model, info


def backbone_state(entry: Weights, raw: Path) -> dict[str, torch.Tensor]:
    """The state dict of a trunk entry: Caffe layer names (ILSVRC Caffe models) or the file's own (``.pth``)."""
    if entry.format == "caffe-trunk":
        return convert_caffe_backbone(raw)
    state = _torch_file(raw)
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(state.get(key), dict):
            state = state[key]
            break
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad or not state:
        raise CheckpointError(f"{raw}: not a state dict of tensors ({', '.join(map(str, bad[:3])) or 'empty'})")
    return dict(state)
