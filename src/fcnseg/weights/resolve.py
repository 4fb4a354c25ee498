"""Naming pretrained weights anywhere a model is opened: a tag, ``MODEL.TAG`` or ``hf://OWNER/NAME[@REVISION]``.

:func:`resolve_spec` turns a :class:`~fcnseg.runtime.model_source.ModelSpec` that names registry or Hub weights
into one whose checkpoint is the local cached file (fetched and converted on first use); the command line, the
:class:`~fcnseg.inference.Segmenter` and Ray workers call it. :func:`get_model` is ``fcnseg.get_model``: the model
registry's builder, plus ``weights=``. :func:`backbone_weights` and :func:`init_source` serve training configs
(``model.backbone_weights``, ``model.init_from``). A value spelled as a file (a path, a ``.safetensors``/``.pt``
suffix, or an existing file) is always a file.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError, ModelError
from ..runtime.model_source import ModelSpec
from .records import Weights
from .table import get_weights, is_weights_name, list_weights

__all__ = [
    "HF_PREFIX",
    "TorchvisionWeights",
    "backbone_weights",
    "checkpoint_path",
    "fetch_weights",
    "get_model",
    "init_source",
    "is_registered",
    "resolve_spec",
]

HF_PREFIX = "hf://"
#: build options that keep the weights' shapes: they may differ from the weights' own build
_FREE = ("pad100", "output_stride", "learn_upsampling")


def is_registered(text: str | None, model: str | None = None) -> bool:
    """Whether ``text`` names registry weights (a full name, or a tag of ``model``) or a Hub repository, and no
    file of that name exists."""
    if not text:
        return False
    if text.startswith(HF_PREFIX):
        return True
    if Path(text).exists() or not is_weights_name(text):
        return False
    names = {w.name for w in list_weights()}
    return text in names or (model is not None and f"{model}.{text}" in names)


def _named_weights(text: str | None) -> bool:
    """``--weights`` values that name weights: a registered name, the Hub, or any registry-like spelling that is no
    file (an unknown tag is then reported against the registry, which lists the valid ones)."""
    return bool(text) and (text.startswith(HF_PREFIX) or (is_weights_name(text) and not Path(text).exists()))


def fetch_weights(name: str | Weights, model: str | None = None) -> Path:
    """The local cached file of registry weights ``name`` (a checkpoint, or a trunk's state dict), fetched and
    converted first if needed.

    Raises:
        ModelError: unknown name. WeightsError: not cached and cannot be fetched.
    """
    from .cache import ensure

    return ensure(name if isinstance(name, Weights) else get_weights(name, model))


def checkpoint_path(name: str, model: str | None = None) -> Path:
    """The local fcnseg checkpoint of whole-FCN weights ``name`` (registry or ``hf://``) for ``model`` (optional).

    Raises:
        ModelError: unknown, trunk-only, or another model's weights. WeightsError: cannot be fetched.
    """
    if name.startswith(HF_PREFIX):
        from ..runtime.checkpoint import read_info
        from .hub import hub_checkpoint

        path = hub_checkpoint(name)
        arch = read_info(path).arch
        if model is not None and model != arch:
            raise ModelError(f"{name} holds {arch}, not {model}; drop --model or use --model {arch}")
        return path
    entry = get_weights(name, model)
    if entry.backbone:
        raise ModelError(
            f"{entry.name} are ImageNet trunk weights, not an FCN's: give them as model.backbone_weights "
            f"(or get_model(..., backbone_weights='{entry.name}'))"
        )
    return fetch_weights(entry)


def resolve_spec(spec: ModelSpec) -> ModelSpec:
    """``spec`` with registry or Hub weights replaced by their local cached checkpoint (fetched on first use).

    ``--model NAME --weights TAG``, ``--weights MODEL.TAG``, ``--weights hf://OWNER/NAME``, ``--model MODEL.TAG``
    and ``--checkpoint MODEL.TAG`` all name them; anything else (files) is returned unchanged.

    Raises:
        ModelError, ConfigError: unknown weights, or options that contradict them. WeightsError: fetch failed.
    """
    if spec.checkpoint:
        if is_registered(spec.checkpoint):
            return replace(spec, checkpoint=str(checkpoint_path(spec.checkpoint)))
        return spec
    model = spec.model
    if not spec.weights and is_registered(model):  # --model fcn8s_vgg16.voc
        model, weights = None, model
    elif _named_weights(spec.weights):
        weights = spec.weights
    else:
        return spec
    try:
        path = checkpoint_path(str(weights), model)
    except ModelError as e:
        if weights and not weights.startswith(HF_PREFIX) and "." not in weights and not Path(weights).exists():
            raise ModelError(f"{e}; no file {weights!r} exists either") from None
        raise
    _check_options(spec, path, str(weights))
    return ModelSpec(checkpoint=str(path))


def _check_options(spec: ModelSpec, path: Path, weights: str) -> None:
    """``--num-classes`` / ``--preprocessing`` describe bare weight files; registry weights record their own."""
    from ..preprocessing import preset
    from ..runtime.checkpoint import preprocessing_of, read_info

    info = read_info(path)
    if spec.num_classes is not None and spec.num_classes != len(info.classes):
        raise ConfigError(
            f"--num-classes {spec.num_classes}: {weights} has {len(info.classes)} classes "
            "(to fine-tune them to other classes, start a training run with model.init_from)"
        )
    if spec.preprocessing is not None and preset(spec.preprocessing) != preprocessing_of(info):
        raise ConfigError(
            f"--preprocessing {spec.preprocessing}: {weights} were trained with their own input convention "
            f"({preprocessing_of(info)}); --preprocessing applies to bare weight files"
        )


def get_model(name: str, *, weights: str | Weights | None = None, backbone_weights: Any = None, **kwargs: Any) -> Any:
    """Build a registered FCN, with pretrained weights when asked: ``fcnseg.get_model("fcn8s_vgg16", weights="voc")``.

    Args:
        name: a registry model name (``fcn8s_vgg16``), or a full weights name (``fcn8s_vgg16.voc``: the weights too).
        weights: registry weights of that model (a tag such as ``voc``, a full name, a
            :class:`~fcnseg.weights.records.Weights`) or ``hf://OWNER/NAME[@REVISION]``. Fetched, checked and
            converted on first use, then read from ``FCNSEG_HOME``. The model is built as the weights were (classes,
            heads, streams); ``pad100``, ``output_stride`` and ``learn_upsampling`` may differ, other options must
            agree.
        backbone_weights: as :func:`fcnseg.models.get_model`'s, or a registry trunk (``imagenet-caffe``,
            ``vgg16.imagenet``).
        **kwargs: the other options of :func:`fcnseg.models.get_model`.

    Returns:
        The network (``model.pretrained``: the weights' :class:`~fcnseg.runtime.checkpoint.CheckpointInfo`, with
        classes, preprocessing, and provenance and published metrics under ``config["weights"]``).

    Raises:
        ModelError: unknown names, weights of another model, or options the weights cannot take.
        WeightsError: the weights cannot be fetched.
    """
    from ..models import get_model as build
    from ..models import list_models

    if weights is None and name not in list_models() and is_registered(name):
        name, weights = get_weights(name).model, name
    if name not in list_models():
        return build(name, **kwargs)  # the registry's own error: the valid names and the closest ones
    if isinstance(backbone_weights, str) and is_registered(backbone_weights, _family(name)):
        backbone_weights = backbone_weights_for(backbone_weights, name)
    if weights is None:
        return build(name, backbone_weights=backbone_weights, **kwargs)
    if backbone_weights is not None:
        raise ModelError("give weights or backbone_weights, not both")
    label = weights.name if isinstance(weights, Weights) else weights
    path = checkpoint_path(label, name)
    return _load(path, label, kwargs)


def _load(path: Path, label: str, overrides: dict[str, Any]) -> Any:
    from ..runtime.checkpoint import build_loaded, load_state_dict_file, read_info

    info = read_info(path)
    built = {k: v for k, v in info.model_kwargs.items() if v is not None}
    for key, value in overrides.items():
        if key not in _FREE and built.get(key, value) != value:
            raise ModelError(
                f"{key}={value!r} does not fit {label} (built with {key}={built.get(key)!r}); only "
                f"{', '.join(_FREE)} may differ (fine-tune with model.init_from for other classes)"
            )
        built[key] = value
    model = build_loaded(info.arch, built, load_state_dict_file(path), path)  # NaN and infinity refused there
    model.pretrained = info
    return model


def _family(arch: str) -> str | None:
    """The trunk family of registry model ``arch`` (built on the meta device: nothing is allocated)."""
    import torch

    from ..models import get_model as build
    from ..models import list_models

    if arch not in list_models():
        return None
    with torch.device("meta"):
        return str(build(arch).family)


class TorchvisionWeights:
    """torchvision ImageNet weights served from fcnseg's cache: quacks as torchvision's weights enum member (``meta``,
    ``get_state_dict``), so :func:`fcnseg.models.load_backbone_weights` treats them as torchvision's (GoogLeNet's
    input transform included) while nothing is fetched from torchvision's own cache."""

    def __init__(self, entry: Weights, state: dict[str, Any]) -> None:
        member = entry.torchvision_member()
        self.name, self.meta, self.url = entry.enum, member.meta, member.url
        self._state = state

    def get_state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return dict(self._state)

    def __repr__(self) -> str:
        return f"TorchvisionWeights({self.name}, from the fcnseg cache)"


def backbone_weights(name: str, family: str, preprocessing: str | None = None) -> Any:
    """Registry trunk weights ``name`` (a full name, or a tag of ``family``) for a ``family`` trunk: a state dict,
    or :class:`TorchvisionWeights`; fetched and converted first if needed.

    Args:
        preprocessing: the run's ``data.preprocessing``; checked against the convention the trunk was trained with.

    Raises:
        ConfigError: whole-FCN weights, another family's, a trunk fcnseg cannot load, or a preprocessing mismatch.
    """
    from ..preprocessing import preset
    from ..runtime.checkpoint import load_state_dict_file

    entry = get_weights(name) if "." in name and is_registered(name) else get_weights(name, family)
    if not entry.backbone:
        raise ConfigError(f"{entry.name} are a whole FCN's weights, not a trunk's: use model.init_from={entry.name}")
    if entry.model != family:
        raise ConfigError(f"{entry.name} are {entry.model} trunk weights; this net has a {family} trunk")
    if entry.net == "googlenet-bvlc":
        raise ConfigError(f"{entry.name}: {entry.note}")
    if preprocessing is not None:
        want, have = entry.preprocess, preset(preprocessing)
        if (want.bgr, want.scale) != (have.bgr, have.scale):
            kind = "BGR 0-255, mean-subtracted" if want.bgr else "RGB, ImageNet-normalised"
            raise ConfigError(
                f"{entry.name} expect {entry.preprocessing} input ({kind}), but data.preprocessing is "
                f"{preprocessing!r}; set data.preprocessing={entry.preprocessing}"
            )
    state = load_state_dict_file(fetch_weights(entry))
    return TorchvisionWeights(entry, state) if entry.enum else state


def backbone_weights_for(name: str, arch: str, preprocessing: str | None = None) -> Any:
    """:func:`backbone_weights` for the trunk of registry model ``arch``."""
    family = _family(arch)
    if family is None:
        raise ModelError(f"unknown model {arch!r} (fcnseg list names them)")
    return backbone_weights(name, family, preprocessing)


def init_source(name: str, model: Any, preprocessing: str | None = None) -> Path | Any:
    """What ``model.init_from: NAME`` starts ``model`` from: the checkpoint of whole-FCN weights (registry or Hub),
    or, for trunk weights, their state dict (transplanted as ``model.backbone_weights`` would be)."""
    if name.startswith(HF_PREFIX):
        return checkpoint_path(name)
    if "." in name:
        entry = get_weights(name)
    else:  # a tag: of this very model, else of its trunk's family
        arch = getattr(model, "arch", None)
        entry = get_weights(name, arch if is_registered(name, arch) else model.family)
    if entry.backbone:
        return backbone_weights(entry.name, model.family, preprocessing)
    return fetch_weights(entry)
