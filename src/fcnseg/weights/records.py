"""What a set of pretrained weights is: torchvision's ``Weights`` pattern, in fcnseg's own records.

A :class:`Weights` entry names the model its weights fit (a registry name such as ``fcn8s_vgg16``, or a trunk
family such as ``vgg16`` for backbone weights) and a tag (``voc``), the :class:`WeightFile` it comes from (file
name, origin URL, checksum when one is published, approximate size), the classes, the preprocessing its training
used, the published metrics with their source, and the licence. Torch-free: ``fcnseg weights`` and the tables load
without torch; the class names and torchvision's enums are looked up when asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from ..preprocessing import PRESETS, Preprocessing

__all__ = ["FORMATS", "WeightFile", "Weights", "drive_url"]

#: how a file becomes what fcnseg loads: the reference Caffe FCNs (``convert_caffe``), their ILSVRC trunks
#: (``convert_caffe_backbone``), torchfcn's ``.pth`` FCNs, and plain ``.pth`` state dicts of classifiers
#: (torchvision's, torchfcn's Caffe VGG16)
FORMATS = ("caffe", "caffe-trunk", "torchfcn", "torch-trunk")


def drive_url(file_id: str) -> str:
    """The download address of a Google Drive file (the one torchfcn's ``download()`` methods use)."""
    return f"https://drive.google.com/uc?id={file_id}"


@dataclass(frozen=True)
class WeightFile:
    """One downloadable file.

    Attributes:
        name: the file name: what a mirror serves (``FCNSEG_WEIGHTS_MIRROR`` + name) and what a file downloaded
            by hand must be called.
        url: where the file's publisher hosts it.
        checksum: ``ALGORITHM:HEX`` as published (``sha1:…``, ``md5:…``, ``sha256:…``), ``sha256-prefix:HEX`` for
            torchvision's files (the prefix in their names), or None: no published checksum (then the file is
            checked by its size and structure, and its SHA-256 is recorded on first download and checked after).
        size_mb: approximate size in MiB (for listings and the free-space check; None: unknown).
        drive_id: a Google Drive file id (the origin is then fetched with ``gdown``).
    """

    name: str
    url: str
    checksum: str | None = None
    size_mb: float | None = None
    drive_id: str | None = None

    @property
    def host(self) -> str:
        """The origin's host name (``dl.caffe.berkeleyvision.org``)."""
        return urlparse(self.url).netloc or self.url


@dataclass(frozen=True)
class Weights:
    """A registry entry: pretrained weights for one model, and everything known about them.

    Attributes:
        model: the registry model the weights fit (``fcn8s_vgg16``), or for backbone weights the trunk family
            (``vgg16``, ``alexnet``, ``googlenet``, ``resnet50`` …: ``FCN.family``).
        tag: the short name, unique per model (``voc``); the full name is ``MODEL.TAG``.
        format: one of :data:`FORMATS`.
        file: the file the weights come from (None for torchvision's: the one its weights enum names).
        classes: the class set (``voc``, ``siftflow``, ``nyud40``, ``context59``; ``imagenet`` for trunks).
        preprocessing: the input convention the weights were trained with (a preset of
            :data:`fcnseg.preprocessing.PRESETS`).
        net: for Caffe files, the reference net (:data:`fcnseg.convert.REFERENCE_NETS` or ``BACKBONE_NETS``).
        metrics: published figures in percent (``mean_iu``, ``pixel_accuracy``, ``mean_accuracy``, ``fw_iu``,
            ``geo_accuracy``; ``acc@1``/``acc@5`` for classifiers).
        metrics_source: where those figures were published.
        dataset: what they were measured on.
        licence: the terms the publisher gives.
        eval_data: the dataset ``fcnseg eval`` defaults to (``name``, ``val_split``; checkpoints carry it under
            ``config["weights"]["eval_data"]``); None for trunks.
        note: anything a user must know (inputs other than photos, a trunk fcnseg cannot load).
        enum: torchvision's weights enum member (``VGG16_Weights.IMAGENET1K_V1``) for torchvision entries.
        width: channel multiplier of the net; below 1 only for scaled-down test files.
    """

    model: str
    tag: str
    format: str
    file: WeightFile | None
    classes: str
    preprocessing: str
    net: str | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    metrics_source: str = ""
    dataset: str = ""
    licence: str = ""
    eval_data: Mapping[str, str] | None = None
    note: str = ""
    enum: str | None = None
    width: float = 1.0

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"weights {self.model}.{self.tag}: format {self.format!r} is not one of {FORMATS}")
        if self.preprocessing not in PRESETS:
            raise ValueError(f"weights {self.model}.{self.tag}: unknown preprocessing {self.preprocessing!r}")
        if self.format in ("caffe", "caffe-trunk") and not self.net:
            raise ValueError(f"weights {self.model}.{self.tag}: a Caffe file needs its reference net")
        if self.file is None and self.enum is None:
            raise ValueError(f"weights {self.model}.{self.tag}: give a file, or a torchvision enum naming one")

    @property
    def name(self) -> str:
        """``MODEL.TAG``, the full name (``fcn8s_vgg16.voc``)."""
        return f"{self.model}.{self.tag}"

    @property
    def backbone(self) -> bool:
        """Weights of an ImageNet trunk (``model.backbone_weights``), not of a whole FCN."""
        return self.format in ("caffe-trunk", "torch-trunk")

    @property
    def preprocess(self) -> Preprocessing:
        """The :class:`~fcnseg.preprocessing.Preprocessing` record the weights expect (callable on images)."""
        return PRESETS[self.preprocessing]

    def class_names(self) -> tuple[str, ...]:
        """The class names (ImageNet's 1000 for trunks, from torchvision's metadata)."""
        if self.classes == "imagenet":
            from torchvision.models import VGG16_Weights

            return tuple(VGG16_Weights.IMAGENET1K_V1.meta["categories"])
        from ..data import classes as tables

        table = {
            "voc": tables.VOC_CLASSES,
            "siftflow": tables.SIFTFLOW_SEMANTIC_CLASSES,
            "nyud40": tables.NYUD40_CLASSES,
            "context59": tables.CONTEXT59_CLASSES,
        }
        return tuple(table[self.classes])

    def source_file(self) -> WeightFile:
        """The file to fetch: :attr:`file`, or for torchvision entries the one its weights enum names (the URL,
        and the SHA-256 prefix torchvision puts in the file name)."""
        if self.file is not None:
            return self.file
        member = self.torchvision_member()
        url = member.url
        name = url.rsplit("/", 1)[-1]
        prefix = name.rsplit("-", 1)[-1].split(".", 1)[0]
        return WeightFile(name, url, f"sha256-prefix:{prefix}", member.meta.get("_file_size"))

    def torchvision_member(self) -> Any:
        """torchvision's weights enum member of a torchvision entry (imports torchvision)."""
        import torchvision.models as tvm

        enum_name, _, member = (self.enum or "").partition(".")
        return getattr(getattr(tvm, enum_name), member)

    def published(self) -> dict[str, float]:
        """The published metrics (for torchvision entries, those of its weights enum: ImageNet-1K top-1/top-5)."""
        if self.enum is not None and not self.metrics:
            return dict(self.torchvision_member().meta.get("_metrics", {}).get("ImageNet-1K", {}))
        return dict(self.metrics)

    def size_mb(self) -> float | None:
        """Approximate size of the file in MiB."""
        return self.source_file().size_mb

    def describe(self) -> dict[str, Any]:
        """A JSON-able record of the entry (what ``fcnseg weights --json`` prints and checkpoints carry)."""
        f = self.source_file()
        return {
            "name": self.name,
            "model": self.model,
            "tag": self.tag,
            "kind": "backbone" if self.backbone else "fcn",
            "file": f.name,
            "url": f.url,
            "checksum": f.checksum,
            "size_mb": f.size_mb,
            "classes": self.classes,
            "preprocessing": self.preprocessing,
            "net": self.net,
            "metrics": self.published(),
            "metrics_source": self.metrics_source,
            "dataset": self.dataset,
            "licence": self.licence,
            "note": self.note,
            "eval_data": dict(self.eval_data) if self.eval_data else None,
        }
