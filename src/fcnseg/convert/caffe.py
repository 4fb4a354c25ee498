"""Read Caffe ``.caffemodel`` files with the protobuf runtime and a minimal schema of our own (no Caffe).

Both layouts are read: the current ``layer`` (``LayerParameter``, blob ``shape``), used by the reference
FCN models, and the legacy ``layers`` (``V1LayerParameter``, blob ``num/channels/height/width``), used by
the ILSVRC VGG16 and CaffeNet models. Field numbers are those of Caffe's ``caffe.proto``; only the fields
fcnseg needs are declared, and protobuf skips the rest.

Layers map to fcnseg parameters by name (the reference names are fcnseg's: ``conv1_1``, ``fc6``,
``score_fr``, ``upscore8``, the SIFT Flow ``_sem``/``_geo`` and NYUD ``color``/``hha`` suffixes):
``blobs[0]`` is the weight, ``blobs[1]`` the bias. A fully connected blob whose size matches a
convolution is reshaped (``fc6`` 4096×25088 → 4096×512×7×7). Every blob's element count is checked
against its declared shape and against the file size, so a malformed file is refused, not trusted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from ..data.classes import CONTEXT59_CLASSES, NYUD40_CLASSES, SIFTFLOW_SEMANTIC_CLASSES, VOC_CLASSES
from ..errors import CheckpointError
from ..files import read_bytes
from ..preprocessing import CAFFE_NYUD, CAFFE_NYUD_HHA, CAFFE_SIFTFLOW, CAFFE_VOC, Preprocessing

__all__ = [
    "BACKBONE_NETS",
    "REFERENCE_NETS",
    "CaffeLayer",
    "convert_caffe",
    "convert_caffe_backbone",
    "read_caffemodel",
    "schema",
]

_F = descriptor_pb2.FieldDescriptorProto


def _message(fdp: descriptor_pb2.FileDescriptorProto, name: str, fields: list[tuple[str, int, int, int, str]]) -> None:
    msg = fdp.message_type.add(name=name)
    for fname, number, ftype, label, type_name in fields:
        f = msg.field.add(name=fname, number=number, type=ftype, label=label)
        if type_name:
            f.type_name = f".fcnseg_caffe.{type_name}"


def _build_schema() -> dict[str, Any]:
    fdp = descriptor_pb2.FileDescriptorProto(name="fcnseg_caffe.proto", package="fcnseg_caffe", syntax="proto2")
    opt, rep = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
    _message(fdp, "BlobShape", [("dim", 1, _F.TYPE_INT64, rep, "")])
    _message(
        fdp,
        "BlobProto",
        [
            ("num", 1, _F.TYPE_INT32, opt, ""),
            ("channels", 2, _F.TYPE_INT32, opt, ""),
            ("height", 3, _F.TYPE_INT32, opt, ""),
            ("width", 4, _F.TYPE_INT32, opt, ""),
            ("data", 5, _F.TYPE_FLOAT, rep, ""),
            ("shape", 7, _F.TYPE_MESSAGE, opt, "BlobShape"),
            ("double_data", 8, _F.TYPE_DOUBLE, rep, ""),
        ],
    )
    _message(
        fdp,
        "LayerParameter",
        [
            ("name", 1, _F.TYPE_STRING, opt, ""),
            ("type", 2, _F.TYPE_STRING, opt, ""),
            ("blobs", 7, _F.TYPE_MESSAGE, rep, "BlobProto"),
        ],
    )
    _message(
        fdp,
        "V1LayerParameter",
        [
            ("name", 4, _F.TYPE_STRING, opt, ""),
            ("type", 5, _F.TYPE_INT32, opt, ""),
            ("blobs", 6, _F.TYPE_MESSAGE, rep, "BlobProto"),
        ],
    )
    _message(
        fdp,
        "NetParameter",
        [
            ("name", 1, _F.TYPE_STRING, opt, ""),
            ("layers", 2, _F.TYPE_MESSAGE, rep, "V1LayerParameter"),
            ("layer", 100, _F.TYPE_MESSAGE, rep, "LayerParameter"),
        ],
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    names = ("BlobShape", "BlobProto", "LayerParameter", "V1LayerParameter", "NetParameter")
    return {n: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"fcnseg_caffe.{n}")) for n in names}


_SCHEMA: dict[str, Any] | None = None


def schema() -> dict[str, Any]:
    """The message classes of the minimal Caffe schema (built once)."""
    global _SCHEMA
    if _SCHEMA is None:
        _SCHEMA = _build_schema()
    return _SCHEMA


@dataclass
class CaffeLayer:
    name: str
    blobs: list[np.ndarray]


def _blob(blob: Any, where: str, budget: int) -> np.ndarray:
    if blob.HasField("shape"):
        shape = tuple(int(d) for d in blob.shape.dim)
    else:  # legacy 4-D blob
        shape = tuple(int(v) for v in (blob.num, blob.channels, blob.height, blob.width))
    if any(d < 0 for d in shape):
        raise CheckpointError(f"{where}: negative blob dimension {shape}")
    values = blob.data if len(blob.data) else blob.double_data
    count = math.prod(shape) if shape else len(values)
    if count * 4 > budget:
        raise CheckpointError(f"{where}: blob shape {shape} claims more data than the file holds")
    if len(values) != count:
        raise CheckpointError(f"{where}: blob shape {shape} needs {count} values, the file has {len(values)}")
    array = np.asarray(values, dtype=np.float32).reshape(shape)
    if not np.isfinite(array).all():  # NaN weights give all-background masks, and exit 0
        raise CheckpointError(f"{where}: holds NaN or infinite values (a diverged or damaged model)")
    return array


def read_caffemodel(path: str | Path) -> list[CaffeLayer]:
    """The layers with blobs of a ``.caffemodel`` (either layout), in file order.

    Raises:
        CheckpointError: unreadable, malformed, or holding no weights.
    """
    path = Path(path)
    raw = read_bytes(path, what="Caffe model", error=CheckpointError)
    net = schema()["NetParameter"]()
    try:
        net.ParseFromString(raw)
    except (DecodeError, RuntimeError, ValueError) as e:
        raise CheckpointError(f"{path}: not a Caffe model (protobuf: {e})") from None
    layers = []
    for layer in list(net.layer) + list(net.layers):
        if not layer.blobs:
            continue
        if not layer.name:
            raise CheckpointError(f"{path}: a layer with weights has no name")
        if any(seen.name == layer.name for seen in layers):  # which one Caffe would use is not defined
            raise CheckpointError(f"{path}: two layers with weights are named {layer.name!r}")
        blobs = [_blob(b, f"{path}: layer {layer.name!r} blob {i}", len(raw)) for i, b in enumerate(layer.blobs)]
        layers.append(CaffeLayer(layer.name, blobs))
    if not layers:
        raise CheckpointError(f"{path}: no layers with weights (not a Caffe model, or an empty one)")
    return layers


@dataclass(frozen=True)
class ReferenceNet:
    arch: str
    classes: tuple[str, ...]
    preprocessing: Preprocessing
    heads: dict[str, int] | None = None
    streams: dict[str, int] | None = None
    in_channels: int = 3


_SIFT_HEADS = {"sem": 33, "geo": 3}
#: the reference release's nets (fcn.berkeleyvision.org folder names) → fcnseg models
REFERENCE_NETS: dict[str, ReferenceNet] = {
    "voc-fcn32s": ReferenceNet("fcn32s_vgg16", VOC_CLASSES, CAFFE_VOC),
    "voc-fcn16s": ReferenceNet("fcn16s_vgg16", VOC_CLASSES, CAFFE_VOC),
    "voc-fcn8s": ReferenceNet("fcn8s_vgg16", VOC_CLASSES, CAFFE_VOC),
    "voc-fcn8s-atonce": ReferenceNet("fcn8s_atonce_vgg16", VOC_CLASSES, CAFFE_VOC),
    "voc-fcn-alexnet": ReferenceNet("fcn32s_alexnet", VOC_CLASSES, CAFFE_VOC),
    "siftflow-fcn32s": ReferenceNet("fcn32s_vgg16", SIFTFLOW_SEMANTIC_CLASSES, CAFFE_SIFTFLOW, heads=_SIFT_HEADS),
    "siftflow-fcn16s": ReferenceNet("fcn16s_vgg16", SIFTFLOW_SEMANTIC_CLASSES, CAFFE_SIFTFLOW, heads=_SIFT_HEADS),
    "siftflow-fcn8s": ReferenceNet("fcn8s_vgg16", SIFTFLOW_SEMANTIC_CLASSES, CAFFE_SIFTFLOW, heads=_SIFT_HEADS),
    "nyud-fcn32s-color": ReferenceNet("fcn32s_vgg16", NYUD40_CLASSES, CAFFE_NYUD),
    "nyud-fcn32s-hha": ReferenceNet("fcn32s_vgg16", NYUD40_CLASSES, CAFFE_NYUD_HHA),
    "nyud-fcn32s-color-d": ReferenceNet("fcn32s_vgg16", NYUD40_CLASSES, CAFFE_NYUD, in_channels=4),
    "nyud-fcn32s-color-hha": ReferenceNet("fcn32s_vgg16", NYUD40_CLASSES, CAFFE_NYUD, streams={"color": 3, "hha": 3}),
    "pascalcontext-fcn32s": ReferenceNet("fcn32s_vgg16", CONTEXT59_CLASSES, CAFFE_VOC),
    "pascalcontext-fcn16s": ReferenceNet("fcn16s_vgg16", CONTEXT59_CLASSES, CAFFE_VOC),
    "pascalcontext-fcn8s": ReferenceNet("fcn8s_vgg16", CONTEXT59_CLASSES, CAFFE_VOC),
}
#: fixed Scale layers of the at-once net: checked, not stored (fcnseg applies them as constants)
_SCALES = {"scale_pool4": 0.01, "scale_pool3": 0.0001}


def caffe_state_dict(
    layers: list[CaffeLayer], target: dict[str, torch.Tensor], source: str
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Map Caffe layers onto ``target``'s keys by name; returns (state dict, dropped layer names)."""
    state: dict[str, torch.Tensor] = {}
    dropped: list[str] = []
    for layer in layers:
        if layer.name in _SCALES:
            if not np.allclose(layer.blobs[0], _SCALES[layer.name]):
                raise CheckpointError(f"{source}: {layer.name} is not the fixed {_SCALES[layer.name]} fcnseg applies")
            continue
        for blob, param in zip(layer.blobs, ("weight", "bias"), strict=False):
            key = f"{layer.name}.{param}"
            if key not in target:
                dropped.append(layer.name)
                break
            like = target[key]
            value = torch.from_numpy(blob)
            if value.numel() != like.numel():
                raise CheckpointError(
                    f"{source}: {layer.name} blob {param} has shape {tuple(value.shape)}, "
                    f"{key} needs {tuple(like.shape)}"
                )
            state[key] = value.reshape(like.shape).clone()
    return state, dropped


def convert_caffe(path: str | Path, net: str, *, width: float = 1.0) -> tuple[Any, Any]:
    """A reference ``.caffemodel`` as an fcnseg model + checkpoint info (classes, preprocessing).

    Args:
        net: a reference net name (``voc-fcn8s``, ``siftflow-fcn16s``, ``nyud-fcn32s-color-hha`` …; see
            :data:`REFERENCE_NETS`).
        width: only for tests with scaled-down files.

    Raises:
        CheckpointError: unknown net, malformed file, or weights that do not fill the model.
    """
    from ..models import get_model
    from ..runtime.checkpoint import CheckpointInfo, load_into, model_kwargs

    if net not in REFERENCE_NETS:
        raise CheckpointError(f"unknown reference net {net!r}; known: {', '.join(REFERENCE_NETS)}")
    ref = REFERENCE_NETS[net]
    layers = read_caffemodel(path)
    kwargs: dict[str, Any] = {"width": width}
    if ref.heads:
        kwargs["heads"] = ref.heads
    else:
        score = next((layer for layer in layers if layer.name in ("score_fr", "score_frcolor")), None)
        kwargs["num_classes"] = int(score.blobs[0].shape[0]) if score else len(ref.classes)
    if ref.streams:
        kwargs["streams"] = ref.streams
    elif ref.in_channels != 3:
        kwargs["in_channels"] = ref.in_channels
    model = get_model(ref.arch, **kwargs)
    target = model.state_dict()
    state, _ = caffe_state_dict(layers, target, str(path))
    fixed = {k: v for k, v in target.items() if k.split(".")[0].startswith("upscore") and k not in state}
    load_into(model, {**state, **fixed}, path)  # fixed bilinear kernels may be absent from old files
    info = CheckpointInfo(
        arch=ref.arch,
        model_kwargs=model_kwargs(model),
        classes=list(ref.classes),
        preprocessing=ref.preprocessing.to_dict(),
        config={"converted_from": str(path), "reference_net": net},
    )
    return model, info


#: ImageNet classifiers of the Caffe model zoo whose trunks initialise the reference FCNs
BACKBONE_NETS = ("vgg16-ilsvrc", "caffenet")


def convert_caffe_backbone(path: str | Path) -> dict[str, torch.Tensor]:
    """An ILSVRC classifier (VGG16, CaffeNet; legacy layout) as a Caffe-named state dict.

    Legacy blobs are 4-D (``1×1×out×in`` for fully connected layers, ``1×1×1×out`` for biases); they
    are squeezed to 2-D / 1-D. The classifier ``fc8`` is dropped. Load the result with
    ``model.backbone_weights`` (or :func:`fcnseg.models.load_backbone_weights`), which reshapes fc6/fc7.
    """
    state: dict[str, torch.Tensor] = {}
    for layer in read_caffemodel(path):
        if layer.name.startswith("fc8"):
            continue
        for blob, param in zip(layer.blobs, ("weight", "bias"), strict=False):
            t = torch.from_numpy(blob)
            if param == "bias":
                t = t.reshape(-1)
            elif t.dim() == 4 and t.shape[0] == 1 and t.shape[1] == 1:  # legacy fully connected
                t = t.reshape(t.shape[2], t.shape[3])
            state[f"{layer.name}.{param}"] = t.clone()
    return state
