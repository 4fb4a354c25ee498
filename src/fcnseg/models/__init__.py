"""FCN models: the registry, the factory, layers and weight transfer."""

from . import zoo  # noqa: F401  (registers every model)
from ._factory import get_model, list_models, model_summary, register_model
from .backbones import vgg16_trunk
from .fcn import FCN
from .freeze import freeze
from .layers import BilinearUpsample, bilinear_kernel, set_upsampling
from .surgery import TransferReport, convolutionalize, load_backbone_weights

__all__ = [
    "FCN",
    "BilinearUpsample",
    "TransferReport",
    "bilinear_kernel",
    "convolutionalize",
    "freeze",
    "get_model",
    "list_models",
    "load_backbone_weights",
    "model_summary",
    "register_model",
    "set_upsampling",
    "vgg16_trunk",
]
