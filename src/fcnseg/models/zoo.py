"""The registered networks: the paper's and reference release's nets and modern backbones.

Each entry point takes the keyword arguments :func:`fcnseg.get_model` resolves (heads, streams,
learn_upsampling, width) and returns an :class:`~fcnseg.models.fcn.FCN`.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from ._factory import build_fcn, register_model
from .backbones.alexnet import alexnet_trunk
from .backbones.googlenet import googlenet_trunk
from .backbones.tv import mobilenet_v3_trunk, resnet_trunk
from .backbones.vgg16 import vgg16_trunk
from .fcn import FCN

__all__: list[str] = []

#: the at-once FCN-8s scales pool4 and pool3 before scoring (reference voc-fcn8s-atonce)
ATONCE_SCALES = {16: 0.01, 8: 0.0001}


# --- VGG16: the reference nets (voc-fcn32s, voc-fcn16s, voc-fcn8s, voc-fcn8s-atonce) ---------------
@register_model()
def fcn32s_vgg16(**kw: Any) -> FCN:
    """FCN-32s on VGG16, reference-exact (upscore k64 s32, crop 19)."""
    return build_fcn(vgg16_trunk, 32, **kw)


@register_model()
def fcn16s_vgg16(**kw: Any) -> FCN:
    """FCN-16s on VGG16, reference-exact (crops 5, 27)."""
    return build_fcn(vgg16_trunk, 16, **kw)


@register_model()
def fcn8s_vgg16(**kw: Any) -> FCN:
    """FCN-8s on VGG16, reference-exact (crops 5, 9, 31)."""
    return build_fcn(vgg16_trunk, 8, **kw)


@register_model()
def fcn8s_atonce_vgg16(**kw: Any) -> FCN:
    """All-at-once FCN-8s: pool4 × 0.01 and pool3 × 0.0001 before scoring (reference voc-fcn8s-atonce)."""
    return build_fcn(vgg16_trunk, 8, skip_scales=ATONCE_SCALES, **kw)


# --- AlexNet ------------------------------------------------------------------------------------------
@register_model()
def fcn32s_alexnet(**kw: Any) -> FCN:
    """FCN-AlexNet on CaffeNet, reference-exact (LRN, groups, upscore k63 s32, crop 18)."""
    return build_fcn(alexnet_trunk, 32, **kw)


@register_model()
def fcn32s_alexnet_tv(**kw: Any) -> FCN:
    """FCN-AlexNet on torchvision's AlexNet layout (so torchvision ImageNet weights transplant)."""
    return build_fcn(partial(alexnet_trunk, caffe=False), 32, **kw)


# --- GoogLeNet ------------------------------------------------------------------------------------------
@register_model()
def fcn32s_googlenet(**kw: Any) -> FCN:
    """FCN-GoogLeNet scored on inception5b (the paper's Table 1 net)."""
    return build_fcn(googlenet_trunk, 32, **kw)


@register_model()
def fcn16s_googlenet(**kw: Any) -> FCN:
    """FCN-16s GoogLeNet: + inception4e skip."""
    return build_fcn(googlenet_trunk, 16, **kw)


@register_model()
def fcn8s_googlenet(**kw: Any) -> FCN:
    """FCN-8s GoogLeNet: + inception4e and inception3b skips."""
    return build_fcn(googlenet_trunk, 8, **kw)


# --- ResNet ------------------------------------------------------------------------------------------------
@register_model()
def fcn32s_resnet50(**kw: Any) -> FCN:
    """FCN-32s on torchvision ResNet-50 (score on layer4)."""
    return build_fcn(partial(resnet_trunk, "resnet50"), 32, **kw)


@register_model()
def fcn16s_resnet50(**kw: Any) -> FCN:
    """FCN-16s on ResNet-50: + layer3 skip."""
    return build_fcn(partial(resnet_trunk, "resnet50"), 16, **kw)


@register_model()
def fcn8s_resnet50(**kw: Any) -> FCN:
    """FCN-8s on ResNet-50: + layer3 and layer2 skips."""
    return build_fcn(partial(resnet_trunk, "resnet50"), 8, **kw)


@register_model()
def fcn32s_resnet101(**kw: Any) -> FCN:
    """FCN-32s on ResNet-101."""
    return build_fcn(partial(resnet_trunk, "resnet101"), 32, **kw)


@register_model()
def fcn8s_resnet101(**kw: Any) -> FCN:
    """FCN-8s on ResNet-101."""
    return build_fcn(partial(resnet_trunk, "resnet101"), 8, **kw)


@register_model()
def fcn32s_resnet18(**kw: Any) -> FCN:
    """FCN-32s on ResNet-18 (a light CPU model)."""
    return build_fcn(partial(resnet_trunk, "resnet18"), 32, **kw)


@register_model()
def fcn16s_resnet18(**kw: Any) -> FCN:
    """FCN-16s on ResNet-18."""
    return build_fcn(partial(resnet_trunk, "resnet18"), 16, **kw)


@register_model()
def fcn8s_resnet18(**kw: Any) -> FCN:
    """FCN-8s on ResNet-18 (a light CPU model)."""
    return build_fcn(partial(resnet_trunk, "resnet18"), 8, **kw)


# --- MobileNetV3 -------------------------------------------------------------------------------------------
@register_model()
def fcn32s_mobilenet_v3_large(**kw: Any) -> FCN:
    """FCN-32s on MobileNetV3-Large."""
    return build_fcn(mobilenet_v3_trunk, 32, **kw)


@register_model()
def fcn8s_mobilenet_v3_large(**kw: Any) -> FCN:
    """FCN-8s on MobileNetV3-Large (strides 8/16/32 at its blocks 6/12/16)."""
    return build_fcn(mobilenet_v3_trunk, 8, **kw)
