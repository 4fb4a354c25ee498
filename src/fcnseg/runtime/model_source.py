"""The model a command names: an fcnseg checkpoint, or a registry name with a weights file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..data.classes import default_classes
from ..errors import ConfigError
from ..models import FCN, get_model
from ..preprocessing import CAFFE_VOC, PRESETS
from .checkpoint import CheckpointInfo, load_checkpoint, load_into, load_state_dict_file, model_kwargs

__all__ = ["infer_num_classes", "load_model"]


def infer_num_classes(state: dict[str, Any]) -> int:
    """The class count of a state dict's score layer (``score_fr``, or NYUD's ``score_frcolor``)."""
    for key in ("score_fr.weight", "score_frcolor.weight"):
        if key in state:
            return int(state[key].shape[0])
    raise ConfigError("cannot tell the number of classes from the weights; pass --num-classes")


def load_model(
    checkpoint: str | Path | None = None,
    *,
    name: str | None = None,
    weights: str | Path | None = None,
    num_classes: int | None = None,
    preprocessing: str = "caffe_voc",
) -> tuple[FCN, CheckpointInfo]:
    """The model and its metadata: ``checkpoint``'s, or, for ``name`` with bare ``weights``, synthesised (the
    classes numbered, ``preprocessing`` as given, ``num_classes`` read from the weights unless given).

    Raises:
        ConfigError: neither a checkpoint nor a name with weights; no class count to be read.
        CheckpointError: a file that is not a checkpoint or does not fit the net.
    """
    if checkpoint:
        return load_checkpoint(checkpoint)
    if not (name and weights):
        raise ConfigError("give --checkpoint CKPT, or --model NAME with --weights FILE")
    state = load_state_dict_file(weights)
    model = get_model(name, num_classes=num_classes or infer_num_classes(state))
    load_into(model, state, weights)
    pre = PRESETS.get(preprocessing, CAFFE_VOC)
    info = CheckpointInfo(arch=name, model_kwargs=model_kwargs(model), classes=default_classes(model.num_classes),
                          preprocessing=pre.to_dict())  # fmt: skip
    return model, info
