"""Weights from other FCN implementations, converted to fcnseg's layout.

fcnseg's VGG16 nets use the reference Caffe layer names and shapes, which is also the layout of the
popular PyTorch port *torchfcn* (``conv1_1.weight`` … ``fc6.weight`` (4096×512×7×7) …
``upscore8.weight``). Its state dicts therefore load with ``strict=True``; :func:`convert_torchfcn`
unwraps its checkpoint files and checks what it returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor

from ..errors import CheckpointError

__all__ = ["convert_torchfcn"]

_WRAPPERS = ("model_state_dict", "state_dict", "model")


def convert_torchfcn(state_dict: Mapping[str, Any]) -> dict[str, Tensor]:
    """A torchfcn state dict (or checkpoint dict) as an fcnseg state dict.

    Accepts the plain ``model.state_dict()`` of ``torchfcn.models.FCN32s/16s/8s/8sAtOnce`` and
    torchfcn's training checkpoints ``{"model_state_dict": …, "optim_state_dict": …, …}``; strips a
    ``module.`` prefix left by ``DataParallel``. Tensors are returned as they are: the layouts agree.

    Raises:
        CheckpointError: the mapping holds no tensors or is not a torchfcn VGG16 FCN.
    """
    for key in _WRAPPERS:
        if key in state_dict and isinstance(state_dict[key], Mapping):
            state_dict = state_dict[key]
            break
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        if not isinstance(value, Tensor):
            raise CheckpointError(f"torchfcn state dict entry {key!r} is a {type(value).__name__}, not a tensor")
        out[key.removeprefix("module.")] = value
    if "conv1_1.weight" not in out or "score_fr.weight" not in out:
        raise CheckpointError("not a torchfcn FCN state dict: conv1_1.weight / score_fr.weight are missing")
    return out
