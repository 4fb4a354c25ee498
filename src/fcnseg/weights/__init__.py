"""Pretrained weights: a registry of the reference FCNs and ImageNet trunks, fetched, checked and cached on first use.

``fcnseg.get_model("fcn8s_vgg16", weights="voc")`` (this package's :func:`get_model`), ``--model fcn8s_vgg16
--weights voc`` on the command line, ``model.backbone_weights: imagenet-caffe`` and ``model.init_from:
fcn32s_vgg16.voc`` in configs all name :class:`Weights` entries (``fcnseg weights`` lists them). The first use
downloads the file (``FCNSEG_WEIGHTS_MIRROR`` replaces every origin; ``FCNSEG_OFFLINE=1`` forbids it), checks it,
converts it once and caches the result in ``FCNSEG_HOME/weights``; ``hf://OWNER/NAME`` loads a Hugging Face Hub
repository written by ``fcnseg export --format hub``. Names are imported on first use: importing this package costs
nothing. :func:`convert_torchfcn` reads torchfcn's state dicts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes

if TYPE_CHECKING:
    from .cache import is_cached
    from .card import write_hub_folder
    from .records import WeightFile, Weights
    from .resolve import backbone_weights, fetch_weights, get_model, resolve_spec
    from .table import get_weights, list_weights, register_weights
    from .torchfcn import convert_torchfcn

__all__ = [
    "WeightFile",
    "Weights",
    "backbone_weights",
    "convert_torchfcn",
    "fetch_weights",
    "get_model",
    "get_weights",
    "is_cached",
    "list_weights",
    "register_weights",
    "resolve_spec",
    "write_hub_folder",
]

__getattr__, __dir__ = lazy_attributes(
    __name__,
    {
        "WeightFile": ".records",
        "Weights": ".records",
        "backbone_weights": ".resolve",
        "convert_torchfcn": ".torchfcn",
        "fetch_weights": ".resolve",
        "get_model": ".resolve",
        "get_weights": ".table",
        "is_cached": ".cache",
        "list_weights": ".table",
        "register_weights": ".table",
        "resolve_spec": ".resolve",
        "write_hub_folder": ".card",
    },
)
