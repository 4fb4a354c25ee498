"""The model registry and :func:`get_model`, the one way to build an fcnseg network."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ModelError
from ..preprocessing import CAFFE_VOC, IMAGENET, Preprocessing
from ..registry import Registry
from .backbones.base import TrunkSpec
from .backbones.vgg16 import check_output_stride
from .fcn import FCN

__all__ = [
    "MODELS",
    "build_fcn",
    "default_preprocessing",
    "get_model",
    "list_models",
    "model_summary",
    "register_model",
]

MODELS: Registry[Callable[..., FCN]] = Registry("model")
register_model = MODELS.register


def list_models(pattern: str | None = None) -> list[str]:
    """Registered model names, optionally filtered by a glob such as ``"fcn8s*"``.

    Example:
        >>> list_models("fcn*_vgg16")
        ['fcn16s_vgg16', 'fcn32s_vgg16', 'fcn8s_atonce_vgg16', 'fcn8s_vgg16']
    """
    return MODELS.list(pattern)


def model_summary(name: str) -> str:
    """What the registered net ``name`` is, in one line (its entry point's docstring's first line)."""
    doc = (MODELS.get(name).__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""


def get_model(
    name: str,
    *,
    num_classes: int | None = None,
    heads: Mapping[str, int] | None = None,
    in_channels: int = 3,
    streams: Mapping[str, int] | None = None,
    learn_upsampling: bool = False,
    width: float = 1.0,
    pad100: bool = True,
    output_stride: int = 32,
    backbone_weights: Any = None,
) -> FCN:
    """Build a registered FCN.

    Args:
        name: registry name, e.g. ``"fcn8s_vgg16"`` (see :func:`list_models`).
        num_classes: classes including background (default 21, PASCAL VOC).
        heads: several outputs on one trunk, e.g. ``{"sem": 33, "geo": 3}`` (SIFT Flow); the model then
            returns a dict. Exclusive with ``num_classes``.
        in_channels: input channels (4 = colour + depth, early fusion).
        streams: late fusion: stream name → its input channels, e.g. ``{"color": 3, "hha": 3}``; each
            stream gets its own trunk and the input's channels are split in this order.
        learn_upsampling: learn the upsampling kernels (CVPR paper) instead of fixing them (release).
        width: channel multiplier for tiny test/CPU models (1.0 = the real net).
        pad100: the reference's 100-pixel input padding (VGG16 nets). ``False`` is the memory-lean
            mode: no extra canvas, ``fc6`` padded 3 instead, crop offsets re-derived; at 500×500 40% fewer
            FLOPs and 21% less training activation memory (``docs/results/pad100.txt``); same weights.
        output_stride: 32 (the release), 16 or 8: shift-and-stitch as filter rarefaction (paper §3.2,
            VGG16 nets): the last pool (16) or two (8) take stride 1 and every later filter is dilated,
            so the score map is the stride-32 net's at every shift of the input, interleaved. Same weight
            shapes (stride-32 and ImageNet trunks load unchanged; the final upsampling is ×16 or ×8).
            Dilated nets are FCN-32s: the skips of FCN-16s/8s would sit at or above the output stride.
        backbone_weights: ImageNet weights to transplant into the trunk(s): a torchvision weights enum
            member, a classifier ``nn.Module`` or a state dict (see :func:`load_backbone_weights`).

    Returns:
        The network; ``model(x)`` maps ``(N, C, H, W)`` to ``(N, K, H, W)`` scores for any ``H, W >= 1``.
        ``model.arch`` is ``name`` and ``model.build_args`` the other arguments above (but the weights),
        enough to build the same net again: ``get_model(model.arch, **model.build_args)``;
        ``model.preprocessing`` is the input its trunk's weights expect (:func:`default_preprocessing`, ImageNet
        normalisation once torchvision weights are loaded), what a :class:`~fcnseg.inference.Segmenter` of the
        bare model uses.

    Raises:
        ModelError: unknown name (the message lists the valid ones) or inconsistent arguments.

    Example:
        >>> import torch
        >>> net = get_model("fcn8s_vgg16", num_classes=5, width=1 / 16).eval()
        >>> net(torch.zeros(1, 3, 37, 50)).shape
        torch.Size([1, 5, 37, 50])
    """
    factory = MODELS.get(name)
    _check_args(num_classes, heads, streams, in_channels, width, output_stride)
    head_map = dict(heads) if heads is not None else {"": 21 if num_classes is None else int(num_classes)}
    stream_map = dict(streams) if streams is not None else {"": in_channels}
    dilated: dict[str, Any] = {"output_stride": output_stride} if output_stride != 32 else {}  # stride 32: as before
    extra: dict[str, Any] = ({} if pad100 else {"pad100": False}) | dilated
    model = factory(heads=head_map, streams=stream_map, learn_upsampling=learn_upsampling, width=width, **extra)
    model.arch = name
    model.pad100 = pad100
    model.build_args = {  # how this net was built: checkpoints, export and `fcnseg info` read it from here
        "heads": dict(heads) if heads is not None else None,
        "num_classes": None if heads is not None else head_map[""],
        "streams": dict(streams) if streams is not None else None,
        "in_channels": in_channels,
        "learn_upsampling": learn_upsampling,
        "width": width,
        "pad100": pad100,
    }
    model.build_args.update(dilated)
    model.preprocessing = default_preprocessing(model.family)
    if backbone_weights is not None:
        from .surgery import load_backbone_weights

        load_backbone_weights(model, backbone_weights)
        if not isinstance(backbone_weights, Mapping):  # torchvision weights or classifier: ImageNet-normalised RGB
            model.preprocessing = IMAGENET
    return model


#: trunks in torchvision's layout, whose ImageNet weights expect RGB in [0, 1] normalised by ImageNet's mean/std
_TORCHVISION_FAMILIES = ("alexnet_tv", "mobilenet_v3_large")


def default_preprocessing(family: str) -> Preprocessing:
    """The input a net of ``family`` expects when nothing else says: the reference trunks (VGG16, CaffeNet,
    GoogLeNet) the Caffe convention their released weights were trained with; torchvision's trunks (ResNet,
    MobileNetV3, torchvision AlexNet) ImageNet normalisation. A checkpoint's own record, or weights' (a torchvision
    enum given as ``backbone_weights``), always wins over this."""
    if family in _TORCHVISION_FAMILIES or family.startswith("resnet"):
        return IMAGENET
    return CAFFE_VOC


def _check_args(
    num_classes: int | None,
    heads: Mapping[str, int] | None,
    streams: Mapping[str, int] | None,
    in_channels: int,
    width: float,
    output_stride: int,
) -> None:
    """:func:`get_model`'s argument checks that need no model (each a one-line :class:`ModelError`)."""
    if num_classes is not None and heads is not None:
        raise ModelError("give num_classes or heads, not both")
    if streams is not None and in_channels != 3:
        raise ModelError("with streams, give each stream's channels in streams, not in_channels")
    if streams is not None and len(streams) > 1 and any(not s for s in streams):
        raise ModelError(f"late-fusion streams need names, got {list(streams)}")
    if not width > 0:
        raise ModelError(f"width must be > 0, got {width}")
    if in_channels < 1:
        raise ModelError(f"in_channels must be >= 1, got {in_channels}")
    check_output_stride(output_stride)


def build_fcn(
    trunk: Callable[..., TrunkSpec],
    finest_stride: int,
    *,
    heads: Mapping[str, int],
    streams: Mapping[str, int],
    learn_upsampling: bool,
    width: float,
    skip_scales: Mapping[int, float] | None = None,
    **trunk_kwargs: Any,
) -> FCN:
    """Assemble an :class:`FCN` with one trunk per stream (used by the registered entry points).

    ``trunk_kwargs`` go to the trunk builder; one it does not take is a :class:`ModelError`.
    """
    taken = inspect.signature(trunk).parameters
    unknown = [k for k in trunk_kwargs if k not in taken]
    if "pad100" in unknown:
        raise ModelError(
            "pad100=False applies to the nets with the reference's 100-pixel padding whose pooling "
            "takes any input size (the VGG16 nets); this net has no such option"
        )
    if "output_stride" in unknown:
        raise ModelError(
            "output_stride applies to VGG16 nets (shift-and-stitch by dilation); this net has no such option"
        )
    if unknown:
        raise ModelError(f"the trunk takes no option {', '.join(unknown)}")
    trunks = {name: trunk(in_channels=c, width=width, **trunk_kwargs) for name, c in streams.items()}
    return FCN(trunks, heads, finest_stride=finest_stride, learn_upsampling=learn_upsampling, skip_scales=skip_scales)
