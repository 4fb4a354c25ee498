"""Typed run configuration: defaults → YAML file → ``key=value`` overrides → validated → dumped.

Sections mirror the reference solvers: ``model`` (which net, how initialised), ``data`` (which dataset,
preprocessing, augmentation), ``train`` (SGD, learning rate, schedule, loss normalisation, cadence)
and ``eval``. Unknown keys and wrong types raise :class:`~fcnseg.errors.ConfigError` naming the file
and the key (``train.lrr: unknown key in configs/voc-fcn8s.yaml; did you mean train.lr?``).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from .errors import ConfigError
from .files import read_text
from .losses import LOSSES
from .yaml_safe import load_yaml

__all__ = [
    "DataConfig",
    "EarlyStop",
    "EvalConfig",
    "ModelConfig",
    "RunConfig",
    "TrainConfig",
    "Weighting",
    "dump_config",
    "load_config",
]

#: the words ``train.class_weights`` takes instead of a list (``train/class_weights.py``)
Weighting = Literal["inverse_frequency", "median_frequency"]
#: the names ``train.loss`` takes: the losses registry's (:data:`fcnseg.losses.LOSSES`), not a second list
LossName = Literal[tuple(LOSSES)]  # type: ignore[valid-type]


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
    # a registry trunk ("imagenet-caffe", "vgg16.imagenet": fcnseg weights), a torchvision enum
    # ("VGG16_Weights.IMAGENET1K_V1") or a state-dict file
    backbone_weights: str | None = None
    # checkpoint of a coarser net (staged training 32s → 16s → 8s), or pretrained weights ("fcn32s_vgg16.voc")
    init_from: str | None = None
    freeze: str = "none"  # none | backbone | up_to:LAYER (e.g. up_to:conv4_3): frozen layers get no gradient
    dropout: float | None = None  # override the trunk's dropout probability (reference: 0.5 after fc6, fc7)
    #: shift-and-stitch as filter rarefaction (dilation): the deepest feature's stride, 32 (none), 16 or 8 (VGG16 nets)
    output_stride: Literal[32, 16, 8] = 32


@dataclass(frozen=True)
class DataConfig:
    name: str = "synthetic"
    root: str | None = None
    train_split: str = "train"
    val_split: str = "val"
    options: dict[str, Any] = field(default_factory=dict)  # dataset-specific keyword arguments
    val_options: dict[str, Any] | None = None  # overrides for the validation set (e.g. synthetic n)
    test_split: str = "test"  # the held-out split: never trained or selected on (fcnseg eval --split test)
    test_options: dict[str, Any] | None = None  # overrides for the held-out split (the demo's: its 100 scenes)
    #: nyud: each NYUD modality its own Caffe mean (colour: caffe_nyud)
    preprocessing: Literal["caffe_voc", "caffe_siftflow", "caffe_nyud", "nyud", "imagenet"] = "caffe_voc"
    crop_size: int | None = None
    scale_range: tuple[float, float] = (1.0, 1.0)
    flip: bool = False
    jitter: int = 0  # translate each training image by up to this many px each way (paper: 32); exposed pixels ignored
    #: hide a cue from the net (PAMI Table 8): set these pixels to the preprocessing's mean, in training and validation
    mask_cue: Literal["none", "foreground", "background", "both"] = "none"
    batch_size: int = 1
    workers: int | Literal["auto"] = "auto"  # auto: CUDA, the rank's cores less one (at most 8); CPU, 0
    #: images leave the workers as uint8 and are normalised on the device (None: on CUDA, for RGB inputs)
    normalize_on_device: bool | None = None


#: the validation scores ``train.early_stop.metric`` can watch (the reference's four numbers)
Watched = Literal["mean_iu", "pixel_accuracy", "mean_accuracy", "fw_iu"]


@dataclass(frozen=True)
class EarlyStop:
    """``train.early_stop``: end a run when its validation score stops rising (``train.max_iter`` is then a cap).

    After each evaluation the watched score counts as a gain when it beats the best so far by at least
    ``min_delta``; ``patience`` evaluations in a row without a gain end the run, but not before step ``min_steps``:
    a net still on its starting plateau (every pixel background: flat for the first thousands of steps at a small
    rate) is not converged, and without ``min_steps`` it looks it. The best checkpoint
    (``checkpoints/best.safetensors``) follows the watched score whatever ``min_delta`` says.
    """

    patience: int = 5  # evaluations in a row without a gain of min_delta
    min_delta: float = 0.0  # the smallest rise of the watched score that counts as a gain
    min_steps: int = 0  # no stop before this step
    metric: Watched = "mean_iu"


@dataclass(frozen=True)
class TrainConfig:
    optimizer: Literal["sgd", "adamw"] = "sgd"  # sgd (the reference) | adamw (betas 0.9/0.999; decoupled weight decay)
    lr: float = 1e-10
    momentum: float = 0.99  # SGD's
    weight_decay: float = 5e-4
    bias_lr_mult: float = 2.0
    schedule: Literal["fixed", "poly", "step"] = "fixed"
    poly_power: float = 0.9
    step_size: int = 0
    step_gamma: float = 0.1
    max_iter: int = 100_000
    iter_size: int = 1  # gradient accumulation (FCN-AlexNet: 20)
    normalize: bool = False  # reference: summed loss ("normalize: false")
    class_weights: list[float] | Weighting | None = None  # per class, or inverse_frequency | median_frequency
    loss: LossName = "ce"  # fcnseg.losses.LOSSES; the Dice ones need normalize: true
    focal_gamma: float = 2.0
    loss_sampling: float = 1.0  # keep each final-layer (stride-32) cell in the loss with this probability
    dice_weight: float = 1.0
    #: autocast (engine/amp.py): auto = bf16 on CPUs with bf16 units (AMX/AVX512-BF16), else fp32 (CUDA too);
    #: true = bf16 on CPU, fp16 on CUDA with a dynamic loss scale (bf16 if amp_dtype says); a resume keeps the run's
    amp: bool | Literal["auto"] = "auto"
    amp_dtype: Literal["auto", "bfloat16", "float16"] = "auto"
    loss_scale: float | None = None  # fp16 initial loss scale; default: measured on the first batch
    seed: int = 1337
    device: str = "auto"  # auto | cpu | cuda | cuda:N (under torchrun: each local rank on cuda:LOCAL_RANK)
    sync_bn: bool = False  # DDP on CUDA: BatchNorm statistics over the global batch (SyncBatchNorm)
    dist_timeout_s: float = 600.0  # bound on any one collective (NCCL / gloo)
    channels_last: bool = True  # NHWC activations (oneDNN / cuDNN native); same numbers, faster
    retain_memory: bool = True  # CPU, glibc: freed memory stays in the process (no page faults per step)
    log_every: int = 20
    eval_every: int = 4000
    checkpoint_every: int = 4000
    early_stop: EarlyStop | None = None  # stop on a validation plateau (None: train max_iter steps)


@dataclass(frozen=True)
class EvalConfig:
    max_images: int | None = None
    grid_images: int = 4
    batch_size: int = 8  # images of the same size scored together (whole images, never padded)
    amp: bool = False  # autocast while scoring: bf16 (fp16 on GPUs without bf16)


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
        choices = [e for e in errors if "use one of" in str(e)]  # a word of the wrong choice: name the choices
        raise (choices or errors)[0]
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp) and isinstance(value, dict):
        return _build(tp, value, key, source)
    if origin is Literal:
        if value in args:
            return value
        raise ConfigError(f"{key}: {value!r} in {source}; use one of {', '.join(map(str, args))}")
    if tp is float and isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            number = float(value)  # YAML reads 1e-10 as a string
        except ValueError:
            number = None
        if number is not None and math.isfinite(number):
            return number
        if number is not None:
            raise ConfigError(f"{key}: {value!r} in {source} is not a finite number")
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
    if len(parts) not in (2, 3) or not all(parts):
        raise ConfigError(
            f"override {text!r}: key must be section.key (e.g. train.lr=1e-4) or section.key.field "
            "(e.g. train.early_stop.patience=5)"
        )
    return parts, load_yaml(raw, f"override {text!r}") if raw.strip() else None


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Defaults, then the YAML file at ``path``, then ``section.key=value`` overrides; validated.

    Raises:
        ConfigError: a missing or malformed file, an unknown section or key, or a value of the wrong type.
    """
    raw: dict[str, dict[str, Any]] = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        loaded = load_yaml(_read_config(Path(path)), str(path))
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
        (section, key, *field_), value = _parse_override(text)
        if section not in _SECTIONS:
            raise ConfigError(f"{section}: unknown section in override {text!r}; sections are {', '.join(_SECTIONS)}")
        if field_:  # section.key.field: one field of a nested record (train.early_stop.patience)
            nested = raw.setdefault(section, {}).get(key)
            raw[section][key] = {**(nested if isinstance(nested, dict) else {}), field_[0]: value}
        else:
            raw.setdefault(section, {})[key] = value
    if overrides:
        source = f"{source} + overrides"
    cfg = RunConfig(**{s: _build(_CLASSES[s], raw.get(s, {}), s, source) for s in _SECTIONS})
    _validate(cfg, source)
    return cfg


#: config file size limit: a config is a few kB; anything near this is not one
MAX_CONFIG_BYTES = 1 << 20


def _read_config(path: Path) -> str:
    """The text of config file ``path``: a regular file (a FIFO is refused, not waited on), UTF-8, bounded."""
    return read_text(path, limit=MAX_CONFIG_BYTES, what="config file", error=ConfigError)


#: (section.key, lowest, highest, lowest allowed?) for every number with a valid range
_RANGES: tuple[tuple[str, float, float, bool], ...] = (
    ("model.num_classes", 1, 100_000, True),
    ("model.in_channels", 1, 64, True),
    ("model.width", 0, 16, False),
    ("model.dropout", 0, 0.999, True),
    ("data.crop_size", 1, 100_000, True),
    ("data.jitter", 0, 100_000, True),
    ("data.batch_size", 1, 100_000, True),
    ("data.workers", 0, 1024, True),
    ("train.dist_timeout_s", 1, 1e7, True),
    ("eval.batch_size", 1, 100_000, True),
    ("train.lr", 0, 1e300, True),  # 0 freezes everything (a test does); 1e30 is for the divergence guard
    ("train.momentum", 0, 0.99999, True),
    ("train.weight_decay", 0, 1, True),
    ("train.bias_lr_mult", 0, 1e6, True),
    ("train.poly_power", 0, 100, False),
    ("train.step_size", 0, 1e12, True),
    ("train.step_gamma", 0, 1e6, False),
    ("train.max_iter", 1, 1e12, True),
    ("train.iter_size", 1, 100_000, True),
    ("train.focal_gamma", 0, 100, True),
    ("train.loss_sampling", 0, 1, False),
    ("train.dice_weight", 0, 1e6, True),
    ("train.loss_scale", 0, 2.0**64, False),
    ("train.seed", 0, 2**63 - 1, True),
    ("train.log_every", 1, 1e12, True),
    ("train.eval_every", 1, 1e12, True),
    ("train.checkpoint_every", 1, 1e12, True),
    ("eval.max_images", 1, 1e12, True),
    ("train.early_stop.patience", 1, 1e9, True),
    ("train.early_stop.min_delta", 0, 1, True),
    ("train.early_stop.min_steps", 0, 1e12, True),
    ("eval.grid_images", 0, 1000, True),
)
_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


def _check_ranges(cfg: RunConfig, source: str) -> None:
    for key, lo, hi, closed in _RANGES:
        value: Any = cfg
        for name in key.split("."):
            value = getattr(value, name, None)
        if value is None or isinstance(value, str):  # None or a word ("auto") already checked by its type
            continue
        if not (lo <= value <= hi) or (not closed and value == lo):
            low = f">= {lo:g}" if closed else f"> {lo:g}"
            raise ConfigError(f"{key}: {value!r} in {source}; expected a number {low} and <= {hi:g}")
    for key, mapping in (("model.heads", cfg.model.heads), ("model.streams", cfg.model.streams)):
        for name, n in (mapping or {}).items():
            if n < 1:
                raise ConfigError(f"{key}.{name}: {n} in {source}; expected a count >= 1")
    lo, hi = cfg.data.scale_range
    if not 0.01 <= lo <= hi <= 100:
        raise ConfigError(f"data.scale_range: [{lo:g}, {hi:g}] in {source}; expected 0.01 <= low <= high <= 100")
    _check_sizes(cfg, source)
    if not _DEVICE.fullmatch(cfg.train.device):
        raise ConfigError(f"train.device: {cfg.train.device!r} in {source}; use auto, cpu, cuda or cuda:N")
    if not re.fullmatch(r"none|backbone|up_to:\w+", cfg.model.freeze):
        raise ConfigError(f"model.freeze: {cfg.model.freeze!r} in {source}; use none, backbone or up_to:LAYER")


def _check_sizes(cfg: RunConfig, source: str) -> None:
    """A crop (padded up to its size) or jitter (a shift each way) beyond the pixel limit of every image is a bomb."""
    from .imageio import max_pixels

    limit, crop, jitter = max_pixels(), cfg.data.crop_size, cfg.data.jitter
    for key, value, side in (("data.crop_size", crop, crop), ("data.jitter", jitter, jitter)):
        if side is not None and side * side > limit:
            raise ConfigError(
                f"{key}: {value} in {source}; at most {math.isqrt(limit)} px, the side of the pixel "
                f"limit of {limit} (FCNSEG_MAX_PIXELS raises it)"
            )


def _validate(cfg: RunConfig, source: str) -> None:
    """Checks across keys that the types alone cannot express."""
    _check_ranges(cfg, source)
    t = cfg.train
    if LOSSES[t.loss].dice and not t.normalize:
        raise ConfigError(
            f"train.loss: {t.loss} in {source} needs train.normalize: true (Dice is a ratio; adding it to the "
            "summed reference loss with its 1e-10 learning rate would make it vanish)"
        )
    if t.class_weights is not None and cfg.model.heads:
        raise ConfigError(f"train.class_weights in {source}: per-class weights apply to single-head nets")
    weights = t.class_weights
    if isinstance(weights, list) and not any(w > 0 for w in weights):
        raise ConfigError(f"train.class_weights: {weights} in {source}; all zero, no pixel would count in the loss")


def dump_config(cfg: RunConfig) -> str:
    """The resolved configuration as YAML (loads back to an equal :class:`RunConfig`)."""
    data = cfg.to_dict()
    data["data"]["scale_range"] = list(data["data"]["scale_range"])
    return yaml.safe_dump(data, sort_keys=False)
