"""Typed run configuration: defaults → YAML file → ``key=value`` overrides → validated → dumped.

Sections mirror the reference solvers: ``model`` (which net, how initialised), ``data`` (which dataset,
preprocessing, augmentation), ``train`` (SGD, learning rate, schedule, loss normalisation, cadence)
and ``eval``. Unknown keys and wrong types raise :class:`~fcnseg.errors.ConfigError` naming the file
and the key (``train.lrr: unknown key in configs/voc-fcn8s.yaml; did you mean train.lr?``).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

__all__ = ["DataConfig", "EvalConfig", "ModelConfig", "RunConfig", "TrainConfig", "dump_config", "load_config"]


@dataclass(frozen=True)
class ModelConfig:
    name: str = "fcn8s_vgg16"
    num_classes: int | None = None  # default: the dataset's class count
    heads: dict[str, int] | None = None
    in_channels: int = 3
    streams: dict[str, int] | None = None
    width: float = 1.0
    learn_upsampling: bool = False
    pad100: bool = True  # reference 100-px input padding; False = memory-lean mode (VGG16 nets)
    backbone_weights: str | None = None  # torchvision enum ("VGG16_Weights.IMAGENET1K_V1") or a state-dict file
    init_from: str | None = None  # checkpoint of a coarser net (staged training 32s → 16s → 8s)
    freeze: str = "none"  # none | backbone | up_to:LAYER (e.g. up_to:conv4_3): frozen layers get no gradient
    dropout: float | None = None  # override the trunk's dropout probability (reference: 0.5 after fc6, fc7)


@dataclass(frozen=True)
class DataConfig:
    name: str = "synthetic"
    root: str | None = None
    train_split: str = "train"
    val_split: str = "val"
    options: dict[str, Any] = field(default_factory=dict)  # dataset-specific keyword arguments
    val_options: dict[str, Any] | None = None  # overrides for the validation set (e.g. synthetic n)
    preprocessing: str = "caffe_voc"  # caffe_voc | caffe_siftflow | caffe_nyud | imagenet
    crop_size: int | None = None
    scale_range: tuple[float, float] = (1.0, 1.0)
    flip: bool = False
    batch_size: int = 1
    workers: int = 0


@dataclass(frozen=True)
class TrainConfig:
    optimizer: str = "sgd"  # sgd (the reference) | adamw (betas 0.9/0.999; decoupled weight decay)
    lr: float = 1e-10
    momentum: float = 0.99  # SGD's
    weight_decay: float = 5e-4
    bias_lr_mult: float = 2.0
    schedule: str = "fixed"  # fixed | poly | step
    poly_power: float = 0.9
    step_size: int = 0
    step_gamma: float = 0.1
    max_iter: int = 100_000
    iter_size: int = 1  # gradient accumulation (FCN-AlexNet: 20)
    normalize: bool = False  # reference: summed loss ("normalize: false")
    class_weights: list[float] | str | None = None  # per class, or inverse_frequency | median_frequency
    loss: str = "ce"  # ce | focal | ce+dice | focal+dice (Dice needs normalize: true)
    focal_gamma: float = 2.0
    dice_weight: float = 1.0
    amp: bool = False  # autocast: bf16 on CPU; fp16 on CUDA with a dynamic loss scale (bf16 if amp_dtype says)
    amp_dtype: str = "auto"  # auto | bfloat16 | float16
    loss_scale: float | None = None  # fp16 initial loss scale; default: measured on the first batch
    seed: int = 1337
    device: str = "auto"
    channels_last: bool = True  # NHWC activations (oneDNN / cuDNN native); same numbers, faster
    retain_memory: bool = True  # CPU, glibc: freed memory stays in the process (no page faults per step)
    log_every: int = 20
    eval_every: int = 4000
    checkpoint_every: int = 4000


@dataclass(frozen=True)
class EvalConfig:
    max_images: int | None = None
    grid_images: int = 4


@dataclass(frozen=True)
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_SECTIONS = {f.name: f.type for f in dataclasses.fields(RunConfig)}
_CLASSES = {"model": ModelConfig, "data": DataConfig, "train": TrainConfig, "eval": EvalConfig}


def _check(value: Any, tp: Any, key: str, source: str) -> Any:
    """Coerce/validate ``value`` against the annotation ``tp``; raise naming ``key`` and ``source``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _check(value, a, key, source)
            except ConfigError as e:
                errors.append(e)
        raise errors[0]
    if tp is Any:
        return value
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):
        try:
            return float(value)  # YAML reads 1e-10 as a string
        except ValueError:
            pass
    if tp in (int, str, bool) and isinstance(value, tp) and not (tp is int and isinstance(value, bool)):
        return value
    if origin is tuple and isinstance(value, (list, tuple)) and len(value) == len(args):
        return tuple(_check(v, a, f"{key}[{i}]", source) for i, (v, a) in enumerate(zip(value, args, strict=True)))
    if origin is list and isinstance(value, (list, tuple)):
        return [_check(v, args[0], f"{key}[{i}]", source) for i, v in enumerate(value)]
    if origin is dict and isinstance(value, dict):
        return {str(k): _check(v, args[1], f"{key}.{k}", source) for k, v in value.items()}
    raise ConfigError(f"{key}: expected {_name(tp)}, got {value!r} ({type(value).__name__}) in {source}")


def _name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _build(cls: type, values: dict[str, Any], section: str, source: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    out = {}
    for k, v in values.items():
        if k not in names:
            close = difflib.get_close_matches(k, names, n=1)
            hint = f"; did you mean {section}.{close[0]}?" if close else f"; valid keys: {', '.join(names)}"
            raise ConfigError(f"{section}.{k}: unknown key in {source}{hint}")
        out[k] = _check(v, hints[k], f"{section}.{k}", source)
    return cls(**out)


def _parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like section.key=value")
    key, raw = text.split("=", 1)
    parts = key.strip().split(".")
    if len(parts) != 2:
        raise ConfigError(f"override {text!r}: key must be section.key (e.g. train.lr=1e-4)")
    return parts, yaml.safe_load(raw) if raw.strip() else None


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Defaults, then the YAML file at ``path``, then ``section.key=value`` overrides; validated.

    Raises:
        ConfigError: a missing or malformed file, an unknown section or key, or a value of the wrong type.
    """
    raw: dict[str, dict[str, Any]] = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML ({e})") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: top level must be a mapping of sections, got {type(loaded).__name__}")
        for section, values in loaded.items():
            if section not in _SECTIONS:
                close = difflib.get_close_matches(str(section), list(_SECTIONS), n=1)
                hint = f"; did you mean {close[0]}?" if close else f"; sections are {', '.join(_SECTIONS)}"
                raise ConfigError(f"{section}: unknown section in {path}{hint}")
            if not isinstance(values, dict):
                raise ConfigError(f"{section}: expected a mapping in {path}, got {type(values).__name__}")
            raw[section] = dict(values)
    for text in overrides:
        (section, key), value = _parse_override(text)
        if section not in _SECTIONS:
            raise ConfigError(f"{section}: unknown section in override {text!r}; sections are {', '.join(_SECTIONS)}")
        raw.setdefault(section, {})[key] = value
    if overrides:
        source = f"{source} + overrides"
    cfg = RunConfig(**{s: _build(_CLASSES[s], raw.get(s, {}), s, source) for s in _SECTIONS})
    _validate(cfg, source)
    return cfg


def _validate(cfg: RunConfig, source: str) -> None:
    """Checks across keys that the types alone cannot express."""
    from .losses import LOSSES

    t = cfg.train
    if t.loss not in LOSSES:
        raise ConfigError(f"train.loss: {t.loss!r} in {source}; use one of {', '.join(LOSSES)}")
    if "dice" in t.loss and not t.normalize:
        raise ConfigError(
            f"train.loss: {t.loss} in {source} needs train.normalize: true (Dice is a ratio; adding it to the "
            "summed reference loss with its 1e-10 learning rate would make it vanish)"
        )
    if t.optimizer not in ("sgd", "adamw"):
        raise ConfigError(f"train.optimizer: {t.optimizer!r} in {source}; use sgd or adamw")
    if t.amp_dtype not in ("auto", "bfloat16", "float16"):
        raise ConfigError(f"train.amp_dtype: {t.amp_dtype!r} in {source}; use auto, bfloat16 or float16")
    if t.class_weights is not None and cfg.model.heads:
        raise ConfigError(f"train.class_weights in {source}: per-class weights apply to single-head nets")


def dump_config(cfg: RunConfig) -> str:
    """The resolved configuration as YAML (loads back to an equal :class:`RunConfig`)."""
    data = cfg.to_dict()
    data["data"]["scale_range"] = list(data["data"]["scale_range"])
    return yaml.safe_dump(data, sort_keys=False)
