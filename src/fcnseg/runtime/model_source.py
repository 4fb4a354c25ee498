"""The model a command or a user names: an fcnseg checkpoint, or a registry name with weights.

:class:`ModelSpec` is the one record of that choice (the command line builds it from ``--checkpoint`` or
``--model NAME --weights W``; Ray workers receive it); :func:`open_model` turns it into the model, what it knows
about itself (:class:`~fcnseg.runtime.checkpoint.CheckpointInfo`: classes, preprocessing, training config) and
the file its tensors came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data.classes import default_classes
from ..errors import CheckpointError, ConfigError
from ..models import FCN
from ..preprocessing import preset
from .checkpoint import CheckpointInfo, build_loaded, load_checkpoint, load_state_dict_file, model_kwargs

__all__ = ["ModelSpec", "OpenedModel", "infer_num_classes", "load_model", "open_model"]


#: the most classes a net may have (as a checkpoint's metadata may say: ``checkpoint_meta``)
MAX_CLASSES = 100_000


def infer_num_classes(state: dict[str, Any], source: Any = "weights") -> int:
    """The class count of a state dict's score layer (``score_fr``, or NYUD's ``score_frcolor``); ``source`` names
    the file in errors."""
    for key in ("score_fr.weight", "score_frcolor.weight"):
        if key in state:
            shape = tuple(getattr(state[key], "shape", ()))
            if len(shape) != 4 or not 1 <= shape[0] <= MAX_CLASSES:
                raise CheckpointError(
                    f"{source}: {key} has shape {shape}; a score layer's weight is (classes, channels, 1, 1), "
                    f"1..{MAX_CLASSES} classes"
                )
            return int(shape[0])
    raise ConfigError("cannot tell the number of classes from the weights; pass --num-classes")


@dataclass(frozen=True)
class ModelSpec:
    """A model to open: ``checkpoint`` (an fcnseg ``.safetensors``), or ``model`` (a registry name) with ``weights``
    (a ``.safetensors``/``.pt`` state dict, e.g. from ``fcnseg convert``); ``num_classes`` and ``preprocessing``
    (a preset name) apply to bare weights, which carry neither."""

    checkpoint: str | None = None
    model: str | None = None
    weights: str | None = None
    num_classes: int | None = None
    preprocessing: str | None = None

    @classmethod
    def of(cls, source: str | Path, weights: str | Path | None = None, **kw: Any) -> ModelSpec:
        """``source`` as a checkpoint, or as a registry name when ``weights`` are given."""
        if weights is not None:
            return cls(model=str(source), weights=str(weights), **kw)
        return cls(checkpoint=str(source), **kw)


@dataclass
class OpenedModel:
    """An opened model: the net (on the CPU), what it knows about itself, and the file of its tensors."""

    model: FCN
    info: CheckpointInfo
    file: Path


def open_model(spec: ModelSpec) -> OpenedModel:
    """Open ``spec``: a checkpoint's model and metadata, or a registry net with bare weights (the classes numbered,
    ``spec.preprocessing`` or the reference's Caffe VOC convention, the class count read from the weights).

    Raises:
        ConfigError: neither a checkpoint nor a name with weights; no class count to be read.
        CheckpointError: a file that is not a checkpoint or does not fit the net.
    """
    if spec.checkpoint:
        model, info = load_checkpoint(spec.checkpoint)
        return OpenedModel(model, info, Path(spec.checkpoint))
    if not (spec.model and spec.weights):
        raise ConfigError("give --checkpoint CKPT, or --model NAME with --weights FILE")
    state = load_state_dict_file(spec.weights)
    classes = spec.num_classes or infer_num_classes(state, spec.weights)
    model = build_loaded(spec.model, {"num_classes": classes}, state, spec.weights)
    pre = preset(spec.preprocessing or "caffe_voc")
    info = CheckpointInfo(
        arch=spec.model,
        model_kwargs=model_kwargs(model),
        classes=default_classes(model.num_classes),
        preprocessing=pre.to_dict(),
    )
    return OpenedModel(model, info, Path(spec.weights))


def load_model(spec: ModelSpec) -> tuple[FCN, CheckpointInfo]:
    """The model and metadata of ``spec`` (:func:`open_model` without the file)."""
    opened = open_model(spec)
    return opened.model, opened.info
