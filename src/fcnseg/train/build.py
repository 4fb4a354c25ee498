"""Build the pieces of a run from its configuration: datasets, model, optimizer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import RunConfig
from ..data import SegmentationDataset, get_dataset
from ..data.transforms import augmentations, eval_transforms, train_transforms
from ..errors import ConfigError, FCNError
from ..models import FCN, TransferReport, get_model, load_backbone_weights
from ..preprocessing import Preprocessing, preset
from ..pretrained import PREFIX, pretrained_path
from ..runtime.checkpoint import load_state_dict_file
from ..weights.resolve import is_registered

__all__ = [
    "build_datasets",
    "build_model",
    "check_classes",
    "init_from",
    "make_optimizer",
    "param_groups",
    "preprocessing",
]


def preprocessing(cfg: RunConfig) -> Preprocessing:
    """The run's input preprocessing (``data.preprocessing``; ``nyud``: the colour stream's)."""
    return preset(cfg.data.preprocessing)


def build_datasets(
    cfg: RunConfig, pre: Preprocessing | None = None, *, normalize: bool = True
) -> tuple[SegmentationDataset, SegmentationDataset]:
    """The training and validation sets, images preprocessed with ``pre`` (default: the config's);
    ``normalize=False`` leaves images uint8 (normalised on the device)."""
    d = cfg.data
    if d.preprocessing == "nyud":  # per-modality reference means, applied by the dataset itself
        return _nyud_datasets(cfg)
    pre = pre or preprocessing(cfg)
    if d.mask_cue != "none" and cfg.model.heads:
        raise ConfigError("data.mask_cue needs a single-head net (one label map to say what is background)")
    if normalize:
        train_tf = train_transforms(
            pre, crop_size=d.crop_size, scale_range=d.scale_range, flip=d.flip, jitter=d.jitter, mask_cue=d.mask_cue
        )
        val_tf = eval_transforms(pre, mask_cue=d.mask_cue)
    else:
        from torchvision.transforms import v2

        from ..data.transforms import MaskCue

        cue = [MaskCue(d.mask_cue, pre)] if d.mask_cue != "none" else []
        aug = augmentations(crop_size=d.crop_size, scale_range=d.scale_range, flip=d.flip, jitter=d.jitter)
        train_tf, val_tf = v2.Compose([*cue, *aug] or [v2.Identity()]), v2.Compose(cue or [v2.Identity()])
    train = _dataset(d.name, d.root, d.train_split, "data.options", transforms=train_tf, **d.options)
    val_opts = {**d.options, **(d.val_options or {})}
    val = _dataset(d.name, d.root, d.val_split, "data.val_options", transforms=val_tf, **val_opts)
    return train, val


def _dataset(name: str, root: Any, split: str, key: str, **kw: Any) -> SegmentationDataset:
    """``get_dataset`` with a wrong option (unknown name, wrong type) reported as the config key at fault."""
    try:
        return get_dataset(name, root, split, **kw)
    except FCNError:
        raise
    except (TypeError, ValueError, KeyError) as e:
        shown = {k: v for k, v in kw.items() if k != "transforms"}
        detail = " ".join(str(e).split())
        raise ConfigError(f"{key} {shown} for dataset {name!r}: {type(e).__name__}: {detail}") from None


def _nyud_datasets(cfg: RunConfig) -> tuple[SegmentationDataset, SegmentationDataset]:
    from torchvision.transforms import v2

    from ..data.transforms import ModalityNormalize

    d = cfg.data
    train = _dataset(d.name, d.root, d.train_split, "data.options", **d.options)
    val = _dataset(d.name, d.root, d.val_split, "data.val_options", **{**d.options, **(d.val_options or {})})
    if d.mask_cue != "none":
        raise ConfigError("data.mask_cue applies to RGB datasets, not NYUD's per-modality inputs")
    aug = augmentations(crop_size=d.crop_size, scale_range=d.scale_range, flip=d.flip, jitter=d.jitter)
    train.transforms = v2.Compose([*aug, ModalityNormalize(train.preprocess)])  # type: ignore[attr-defined]
    val.transforms = v2.Compose([ModalityNormalize(val.preprocess)])  # type: ignore[attr-defined]
    return train, val


def check_classes(cfg: RunConfig, dataset: SegmentationDataset | None) -> None:
    """Refuse class counts below the data's (its labels would be out of range at the first step) and heads the
    data has no mask for. Without a dataset (a model built from its config alone) there is nothing to check."""
    m = cfg.model
    if dataset is None:
        return
    found = dataset.head_classes if m.heads else {"": list(dataset.classes)}
    wanted = m.heads or ({"": m.num_classes} if m.num_classes is not None else {})
    for head, n in wanted.items():
        key = f"model.heads.{head}" if m.heads else "model.num_classes"
        if head not in found:
            raise ConfigError(f"{key}: the dataset has no mask {head!r} (its masks: {', '.join(map(repr, found))})")
        if n < len(found[head]):
            names = ", ".join(found[head][:4]) + (" …" if len(found[head]) > 4 else "")
            raise ConfigError(
                f"{key}: {n}, but the training set has {len(found[head])} classes ({names}): its labels up to "
                f"{len(found[head]) - 1} would be out of range; use at least {len(found[head])}"
            )


#: parameters a config may ask for (8 GiB of fp32 weights; VGG16's FCN-8s has 134 M at width 1)
MAX_PARAMETERS = 2**31


def build_model(cfg: RunConfig, dataset: SegmentationDataset | None) -> FCN:
    """The net ``cfg.model`` names, its class count from the config or else from ``dataset``."""
    m = cfg.model
    check_classes(cfg, dataset)
    if not m.heads and m.num_classes is None and dataset is None:
        raise ConfigError("model.num_classes: not given, and there is no dataset to count the classes of")
    num_classes = None if m.heads else (m.num_classes or len(dataset.classes))  # type: ignore[union-attr]
    kwargs = {
        "num_classes": num_classes,
        "heads": m.heads,
        "in_channels": m.in_channels,
        "streams": m.streams,
        "width": m.width,
        "learn_upsampling": m.learn_upsampling,
        "pad100": m.pad100,
        "output_stride": m.output_stride,
    }
    with torch.device("meta"):  # counted before anything is allocated: model.width 16 is 34 G parameters
        count = sum(p.numel() for p in get_model(m.name, **kwargs).parameters())
    if count > MAX_PARAMETERS:
        raise ConfigError(
            f"model: {m.name} at model.width {m.width:g} with these classes, heads and streams has {count:,} "
            f"parameters ({count * 4 / 2**30:.0f} GiB in fp32); at most {MAX_PARAMETERS:,}"
        )
    model = get_model(m.name, **kwargs)
    if m.dropout is not None:
        if not 0.0 <= m.dropout < 1.0:
            raise ConfigError(f"model.dropout must be in [0, 1), got {m.dropout}")
        for module in model.modules():
            if isinstance(module, nn.Dropout):
                module.p = m.dropout
    return model


def backbone_source(spec: str) -> Any:
    """``"VGG16_Weights.IMAGENET1K_V1"`` → the torchvision enum member; a path or a shipped
    ``fcnseg:NAME`` (:mod:`fcnseg.pretrained`) → its state dict."""
    if spec.startswith(PREFIX):
        return load_state_dict_file(pretrained_path(spec))
    if Path(spec).suffix in (".pt", ".pth", ".safetensors"):
        return load_state_dict_file(spec)
    import torchvision.models as tvm

    enum_name, _, member = spec.partition(".")
    enum = getattr(tvm, enum_name, None)
    if enum is None or not member or not hasattr(enum, member):
        raise ConfigError(f"model.backbone_weights: {spec!r} is neither a weights file nor a torchvision weights name")
    return getattr(enum, member)


def init_backbone(model: FCN, cfg: RunConfig) -> TransferReport | None:
    """Transplant ``model.backbone_weights``; torchvision weights require ImageNet preprocessing. Registry trunks
    (``imagenet-caffe``, ``vgg16.imagenet``; ``fcnseg weights``) are fetched and cached on first use."""
    if not cfg.model.backbone_weights:
        return None
    if is_registered(cfg.model.backbone_weights, model.family):
        from ..weights.resolve import backbone_weights

        trunk = backbone_weights(cfg.model.backbone_weights, model.family, cfg.data.preprocessing)
        return load_backbone_weights(model, trunk)
    source = backbone_source(cfg.model.backbone_weights)
    if not isinstance(source, dict) and cfg.data.preprocessing != "imagenet":
        raise ConfigError(
            f"model.backbone_weights {cfg.model.backbone_weights} are torchvision weights, trained on "
            f"ImageNet-normalised RGB, but data.preprocessing is {cfg.data.preprocessing!r}; "
            "set data.preprocessing=imagenet "
            "(or use Caffe weights converted with 'fcnseg convert caffe … --net vgg16-ilsvrc')"
        )
    return load_backbone_weights(model, source)


def init_from(model: FCN, path: str | Path, preprocessing: str | None = None) -> TransferReport:
    """Staged training: copy every layer of a coarser net's checkpoint that the finer net shares.

    Layers present in both with the same shape are copied (trunk, ``score_fr``); layers only the finer
    net has (``score_pool4``, ``score_pool3``) keep their zero initialisation; upsampling layers that
    differ are left bilinear. A shared layer of a different shape is an error (another architecture).
    ``path`` may name pretrained weights (``fcn32s_vgg16.voc``, ``hf://OWNER/NAME``; fetched and cached on first
    use); trunk weights (``imagenet-caffe``) are transplanted as ``model.backbone_weights`` would be, checked against
    the run's ``preprocessing``.
    """
    if isinstance(path, str) and (is_registered(path, model.arch) or is_registered(path, model.family)):
        from ..weights.resolve import init_source

        source = init_source(path, model, preprocessing)
        if not isinstance(source, Path):
            return load_backbone_weights(model, source)
        path = source
    state = load_state_dict_file(path)
    own = model.state_dict()
    report = TransferReport()
    with torch.no_grad():
        for k, v in state.items():
            if k not in own:
                report.dropped.append(k)
            elif own[k].shape != v.shape:
                if k.split(".")[0].startswith("upscore"):
                    report.dropped.append(k)
                    continue
                raise ConfigError(
                    f"model.init_from: {path}: {k} has shape {tuple(v.shape)}, the model needs {tuple(own[k].shape)}"
                )
            else:
                own[k].copy_(v)
                report.copied.append(k)
    if not report.copied:
        raise ConfigError(
            f"model.init_from: {path}: no layer of it fits {model.arch} (its layers: "
            f"{', '.join(list(state)[:4])} …); starting from scratch instead would be a silent mistake"
        )
    model.load_state_dict(own)  # refreshes derived buffers (grouped upsampling kernels)
    report.missing = sorted(set(own) - set(state))
    return report


def param_groups(model: nn.Module, lr: float, weight_decay: float, bias_lr_mult: float) -> list[dict[str, Any]]:
    """The reference's groups: weights (lr, decay) and biases (``bias_lr_mult`` × lr, no decay).

    Fixed upsampling kernels are buffers, so they are in no group at all.
    """
    weights, biases = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (biases if name.endswith(".bias") else weights).append(p)
    return [
        {"params": weights, "lr": lr, "weight_decay": weight_decay, "lr_mult": 1.0},
        {"params": biases, "lr": lr * bias_lr_mult, "weight_decay": 0.0, "lr_mult": bias_lr_mult},
    ]


def make_optimizer(model: nn.Module, tc: Any) -> torch.optim.Optimizer:
    """``tc.optimizer`` over the reference's parameter groups, as one fused kernel where this torch has it.

    SGD (the reference solver) with ``tc.momentum``; or AdamW (betas 0.9/0.999, decoupled weight decay),
    which leaves the all-background solution of zero-initialised score layers within a short CPU budget
    where SGD does not (``fcnseg experiment miniature``). Fused and foreach kernels compute the same
    update as the per-parameter loop, without a Python loop over ~30 tensors and their kernel launches.
    """
    groups = param_groups(model, tc.lr, tc.weight_decay, tc.bias_lr_mult)
    if tc.optimizer == "adamw":
        try:
            return torch.optim.AdamW(groups, lr=tc.lr, fused=True)
        except (RuntimeError, TypeError, ValueError):
            return torch.optim.AdamW(groups, lr=tc.lr, foreach=True)
    try:
        return torch.optim.SGD(groups, lr=tc.lr, momentum=tc.momentum, fused=True)
    except (RuntimeError, TypeError, ValueError):  # fused unsupported for this device or dtype
        return torch.optim.SGD(groups, lr=tc.lr, momentum=tc.momentum, foreach=True)
