"""Backbone trunks, each described by a :class:`~fcnseg.models.backbones.base.TrunkSpec`."""

from .alexnet import alexnet_trunk
from .base import TrunkSpec
from .googlenet import googlenet_trunk
from .tv import mobilenet_v3_trunk, resnet_trunk
from .vgg16 import vgg16_trunk

__all__ = ["TrunkSpec", "alexnet_trunk", "googlenet_trunk", "mobilenet_v3_trunk", "resnet_trunk", "vgg16_trunk"]
