"""Net surgery: classifiers made fully convolutional, and ImageNet weights moved into FCN trunks.

The paper's key step: a classifier's fully connected layers are convolutions whose kernels cover
their whole input. VGG16's ``Linear(25088 → 4096)`` is a ``4096×512×7×7`` convolution, its
``Linear(4096 → 4096)`` a 1×1 one; run on a larger image, the net evaluates the classifier at every
stride-32 position in one pass.

:func:`load_backbone_weights` is the reference ``surgery.transplant`` made strict: keys are mapped by
an explicit table, weights are copied when shapes agree, *coerced* (reshaped) when only the layout
differs (fully connected → convolution), and extra input channels (early fusion) start at zero. A
size mismatch is an error, never the reference's silent truncation or repetition.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import CheckpointError, ModelError
from .backbones.googlenet import GoogLeNetInputTransform
from .backbones.vgg16 import VGG16_BLOCKS
from .fcn import FCN, backbone_name

__all__ = ["TransferReport", "convolutionalize", "load_backbone_weights", "torchvision_to_caffe_names"]


def convolutionalize(classifier: nn.Module) -> nn.Sequential:
    """Turn a classifier with ``features`` and a fully connected ``classifier`` into convolutions.

    Works for torchvision's VGG and AlexNet (and any model built the same way). The first ``Linear``
    becomes a ``k×k`` convolution over the features' channels (7×7 for VGG16, 6×6 for AlexNet), the
    others 1×1 convolutions; the same weights, reshaped. The adaptive average pooling is dropped: at
    the canonical input size (224) it is the identity, and on larger inputs the FCN slides instead.

    Args:
        classifier: the ImageNet-style classifier.

    Returns:
        ``nn.Sequential(features=…, classifier=…)``: at 224×224 its output is the classifier's logits
        as a ``(N, classes, 1, 1)`` map; on larger inputs ``(N, classes, h, w)``.

    Raises:
        ModelError: the model has no ``features``/``classifier`` or its sizes do not fit a square kernel.
    """
    features = getattr(classifier, "features", None)
    head = getattr(classifier, "classifier", None)
    if not isinstance(features, nn.Module) or not isinstance(head, nn.Module):
        raise ModelError(
            f"convolutionalize needs a model with .features and .classifier, got {type(classifier).__name__}"
        )
    convs = [m for m in features.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ModelError("convolutionalize: .features has no convolution")
    channels = convs[-1].out_channels
    layers: list[nn.Module] = []
    first = True
    for m in head.children() if isinstance(head, nn.Sequential) else [head]:
        if isinstance(m, nn.Linear):
            c_in = channels if first else m.in_features
            k = math.isqrt(m.in_features // c_in) if m.in_features % c_in == 0 else 0
            if k * k * c_in != m.in_features:
                raise ModelError(
                    f"Linear({m.in_features}, {m.out_features}) is not a square kernel over {c_in} channels"
                )
            conv = nn.Conv2d(c_in, m.out_features, k, bias=m.bias is not None)
            with torch.no_grad():
                conv.weight.copy_(m.weight.reshape(conv.weight.shape))
                if m.bias is not None:
                    conv.bias.copy_(m.bias)
            layers.append(conv)
            first = False
        elif isinstance(m, (nn.ReLU, nn.Dropout, nn.Identity)):
            layers.append(m)
        else:
            raise ModelError(f"convolutionalize: unsupported classifier layer {type(m).__name__}")
    return nn.Sequential(OrderedDict(features=features, classifier=nn.Sequential(*layers)))


@dataclass
class TransferReport:
    """What :func:`load_backbone_weights` did, per target key (like the reference surgery's printout)."""

    copied: list[str] = field(default_factory=list)
    coerced: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"copied {len(self.copied)}, coerced {len(self.coerced)} ({', '.join(self.coerced) or '-'}), "
            f"dropped {len(self.dropped)} ({', '.join(self.dropped) or '-'}), missing {len(self.missing)}"
        )


def torchvision_to_caffe_names(family: str) -> dict[str, str]:
    """Layer-prefix map from torchvision's VGG16 / AlexNet keys to the reference Caffe names."""
    if family == "vgg16":
        names = [f"conv{b}_{i}" for b, n, _ in VGG16_BLOCKS for i in range(1, n + 1)]
        indices = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
        table = {f"features.{i}": n for i, n in zip(indices, names, strict=True)}
        table.update({"classifier.0": "fc6", "classifier.3": "fc7", "classifier.6": "fc8"})
        return table
    if family == "alexnet_tv":
        layers = ("features.0", "features.3", "features.6", "features.8", "features.10", "classifier.1", "classifier.4")
        return dict(zip(layers, ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7"), strict=True)) | {
            "classifier.6": "fc8"
        }
    return {}


def _source_state(source: Any) -> tuple[dict[str, Tensor], bool]:
    """(state dict, came from torchvision weights enum)."""
    if hasattr(source, "get_state_dict") and hasattr(source, "meta"):  # torchvision WeightsEnum member
        return dict(source.get_state_dict(progress=True)), True
    if isinstance(source, nn.Module):
        return dict(source.state_dict()), False
    if isinstance(source, Mapping):
        return dict(source), False
    raise CheckpointError(
        f"backbone weights must be a torchvision weights enum, nn.Module or state dict, got {type(source).__name__}"
    )


def _to_target(model: FCN, key: str, stream: str) -> str:
    """Where source key ``key`` (already in fcnseg's trunk naming) lives for ``stream``."""
    if model.family in ("vgg16", "alexnet", "alexnet_tv"):
        layer, _, param = key.partition(".")
        return f"{layer}{stream}.{param}"
    prefix = backbone_name(stream)
    if model.family == "mobilenet_v3_large":
        key = re.sub(r"^features\.", "", key)
    return f"{prefix}.{key}"


def _rename(model: FCN, key: str) -> str:
    table = torchvision_to_caffe_names(model.family)
    layer, _, param = key.rpartition(".")
    return f"{table[layer]}.{param}" if layer in table else key


def load_backbone_weights(model: FCN, source: Any, *, strict: bool = True) -> TransferReport:
    """Transplant ImageNet classifier weights into every trunk of ``model``.

    Args:
        model: an fcnseg FCN.
        source: torchvision weights (``VGG16_Weights.IMAGENET1K_V1``, downloaded on first use), a
            classifier module, or a state dict with torchvision or reference Caffe key names.
        strict: raise if a trunk layer receives nothing.

    Returns:
        A :class:`TransferReport` naming the copied, coerced (reshaped / channel-expanded), dropped
        (source layers the FCN has no place for, e.g. ``fc8``) and missing keys.

    Raises:
        CheckpointError: a layer's size differs (e.g. torchvision AlexNet into the CaffeNet trunk), or
            trunk layers are missing with ``strict``.
    """
    state, from_enum = _source_state(source)
    if model.family == "alexnet" and "features.0.weight" in state:
        raise CheckpointError(
            "torchvision's AlexNet (64-channel conv1, no groups) does not fit the reference CaffeNet trunk "
            "of fcn32s_alexnet; build 'fcn32s_alexnet_tv' for torchvision weights"
        )
    target = model.state_dict()
    trunk_keys = {k for k in target if not _is_head_key(model, k)}
    report = TransferReport()
    new: dict[str, Tensor] = {}
    streams = [s.name for s in model.streams]
    for src_key, value in state.items():
        name = _rename(model, src_key)
        placed = False
        for stream in streams:
            dst = _to_target(model, name, stream)
            if dst not in trunk_keys:
                continue
            new[dst] = _fit(dst, src_key, value, target[dst], report)
            placed = True
        if not placed:
            report.dropped.append(src_key)
    derived = {k for k in trunk_keys if k.endswith("num_batches_tracked") or ".transform_input." in k}  # not weights
    report.missing = sorted(trunk_keys - set(new) - derived)
    if strict and report.missing:
        shown = ", ".join(report.missing[:8]) + (" …" if len(report.missing) > 8 else "")
        raise CheckpointError(
            f"backbone weights leave {len(report.missing)} trunk tensors of {model.arch} empty: {shown}"
        )
    with torch.no_grad():
        for k, v in new.items():
            target[k].copy_(v)
    if from_enum and model.family == "googlenet":  # torchvision's GoogLeNet weights expect transform_input
        for m in model.modules():
            if isinstance(m, GoogLeNetInputTransform):
                m.enabled = True
    return report


def _fit(dst: str, src: str, value: Tensor, like: Tensor, report: TransferReport) -> Tensor:
    if value.shape == like.shape:
        report.copied.append(dst)
        return value
    if value.numel() == like.numel():  # fully connected → convolution
        report.coerced.append(dst)
        return value.reshape(like.shape)
    if (
        value.dim() == 4
        and like.dim() == 4
        and value.shape[0] == like.shape[0]
        and value.shape[2:] == like.shape[2:]
        and like.shape[1] > value.shape[1]
    ):
        out = torch.zeros_like(like)  # extra input channels (depth) start at zero: the net begins as RGB-only
        out[:, : value.shape[1]] = value
        report.coerced.append(dst)
        return out
    raise CheckpointError(f"{src} has shape {tuple(value.shape)} but {dst} needs {tuple(like.shape)}")


def _is_head_key(model: FCN, key: str) -> bool:
    layer = key.split(".")[0]
    return layer.startswith(("score_", "upscore"))
