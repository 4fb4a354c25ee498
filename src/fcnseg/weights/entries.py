"""The registry's entries: the reference release's 14 Caffe FCNs, torchfcn's copies, and ImageNet trunks.

File names, URLs and checksums are the publishers' (the release's ``caffemodel-url`` files, torchfcn's
``download()`` methods, the BVLC and VGG model pages, torchvision's weights enums). Sizes of the release's FCN files
are computed from the nets' parameter counts (4 bytes each; ``tests/weights/test_registry.py`` checks them) and are
approximate; published metrics are in percent. Only ``fcn8s-heavy-pascal`` and ``fcn32s-heavy-pascal`` of the
release have a published checksum (SHA-1); the others are checked by size and structure and pinned by SHA-256 on
first download.
"""

from __future__ import annotations

from .records import WeightFile, Weights, drive_url

__all__ = ["ENTRIES"]

RELEASE = "http://dl.caffe.berkeleyvision.org/"
_RELEASE_TERMS = "BSD-2-Clause (fcn.berkeleyvision.org, the reference release)"
_README = "fcn.berkeleyvision.org release README (heavy nets, seg11valid)"
_PAMI = "Shelhamer, Long, Darrell, PAMI 2016"
_VOC_EVAL = {"name": "voc", "val_split": "seg11valid"}
_SIFT_EVAL = {"name": "siftflow", "val_split": "test"}
_NYUD_EVAL = {"name": "nyudv2", "val_split": "test"}
_CONTEXT_EVAL = {"name": "pascal_context", "val_split": "val"}
_SIFT_NOTE = "two heads: sem (33 classes) and geo (3: sky, horizontal, vertical)"


def _release(
    model: str, tag: str, file: str, net: str, size_mb: float, checksum: str | None = None, **kw: object
) -> Weights:
    return Weights(
        model=model,
        tag=tag,
        format="caffe",
        file=WeightFile(file, RELEASE + file, checksum, size_mb),
        net=net,
        licence=_RELEASE_TERMS,
        **kw,  # type: ignore[arg-type]
    )


def _voc(model: str, file: str, net: str, size_mb: float, mean_iu: float, checksum: str | None = None) -> Weights:
    return _release(
        model,
        "voc",
        file,
        net,
        size_mb,
        checksum,
        classes="voc",
        preprocessing="caffe_voc",
        metrics={"mean_iu": mean_iu},
        metrics_source=_README,
        dataset="PASCAL VOC 2011 seg11valid (trained on SBD train)",
        eval_data=_VOC_EVAL,
    )


def _siftflow(model: str, file: str, net: str, size_mb: float, metrics: dict[str, float]) -> Weights:
    return _release(
        model,
        "siftflow",
        file,
        net,
        size_mb,
        classes="siftflow",
        preprocessing="caffe_siftflow",
        metrics=metrics,
        metrics_source=f"{_PAMI} (SIFT Flow, FCN-16s)" if metrics else "",
        dataset="SIFT Flow test (200 images)",
        eval_data=_SIFT_EVAL,
        note=_SIFT_NOTE + ("" if metrics else "; no published figure for this stride is known here"),
    )


def _nyud(
    tag: str, file: str, net: str, size_mb: float, metrics: dict[str, float], note: str, pre: str = "caffe_nyud"
) -> Weights:
    return _release(
        "fcn32s_vgg16",
        tag,
        file,
        net,
        size_mb,
        classes="nyud40",
        preprocessing=pre,
        metrics=metrics,
        metrics_source=f"{_PAMI} (NYUDv2)",
        dataset="NYUDv2 test (654 images, 40 classes)",
        eval_data=_NYUD_EVAL,
        note=note,
    )


def _context(model: str, file: str, net: str, size_mb: float, mean_iu: float) -> Weights:
    return _release(
        model,
        "pascalcontext",
        file,
        net,
        size_mb,
        classes="context59",
        preprocessing="caffe_voc",
        metrics={"mean_iu": mean_iu},
        metrics_source="fcn.berkeleyvision.org release README (PASCAL-Context, author-hosted version)",
        dataset="PASCAL-Context val, 59 classes + background",
        eval_data=_CONTEXT_EVAL,
    )


def _nyud_metrics(pixel: float, mean_acc: float, mean_iu: float, fw: float) -> dict[str, float]:
    return {"pixel_accuracy": pixel, "mean_accuracy": mean_acc, "mean_iu": mean_iu, "fw_iu": fw}


_FCN8S_SHA1 = "sha1:c449ea74dd7d83751d1357d6a8c323fcf4038962"
_FCN32S_SHA1 = "sha1:05eb922d7829c39448f57e5ab9d8cd75d6c0be6d"

#: the reference release's 14 models (fcn.berkeleyvision.org, ``*/caffemodel-url``)
REFERENCE: tuple[Weights, ...] = (
    _voc("fcn32s_vgg16", "fcn32s-heavy-pascal.caffemodel", "voc-fcn32s", 519.4, 63.6, _FCN32S_SHA1),
    _voc("fcn16s_vgg16", "fcn16s-heavy-pascal.caffemodel", "voc-fcn16s", 514.3, 65.0),
    _voc("fcn8s_vgg16", "fcn8s-heavy-pascal.caffemodel", "voc-fcn8s", 513.0, 65.5, _FCN8S_SHA1),
    _voc("fcn8s_atonce_vgg16", "fcn8s-atonce-pascal.caffemodel", "voc-fcn8s-atonce", 513.0, 65.4),
    _voc("fcn32s_alexnet", "fcn-alexnet-pascal.caffemodel", "voc-fcn-alexnet", 223.9, 48.0),
    _siftflow("fcn32s_vgg16", "siftflow-fcn32s-heavy.caffemodel", "siftflow-fcn32s", 529.9, {}),
    _siftflow(
        "fcn16s_vgg16",
        "siftflow-fcn16s-heavy.caffemodel",
        "siftflow-fcn16s",
        517.2,
        {"pixel_accuracy": 85.2, "mean_accuracy": 51.7, "mean_iu": 39.5, "fw_iu": 76.1, "geo_accuracy": 94.3},
    ),
    _siftflow("fcn8s_vgg16", "siftflow-fcn8s-heavy.caffemodel", "siftflow-fcn8s", 514.0, {}),
    _nyud(
        "nyud-color",
        "nyud-fcn32s-color-heavy.caffemodel",
        "nyud-fcn32s-color",
        537.8,
        _nyud_metrics(60.0, 42.2, 29.2, 43.9),
        "RGB input",
    ),
    _nyud(
        "nyud-hha",
        "nyud-fcn32s-hha-heavy.caffemodel",
        "nyud-fcn32s-hha",
        537.8,
        _nyud_metrics(57.1, 35.2, 24.2, 40.4),
        "input: HHA images (depth encoded as 3 channels), not photos",
        pre="caffe_nyud_hha",  # the release subtracts the HHA mean from this stream, not the colour one
    ),
    _nyud(
        "nyud-color-hha",
        "nyud-fcn32s-color-hha-heavy.caffemodel",
        "nyud-fcn32s-color-hha",
        1050.6,
        _nyud_metrics(64.3, 44.9, 32.8, 48.0),
        "late fusion: input colour + HHA (6 channels); evaluate on nyudv2, not on photos",
    ),
    _context("fcn32s_vgg16", "pascalcontext-fcn32s-heavy.caffemodel", "pascalcontext-fcn32s", 569.4, 35.1),
    _context("fcn16s_vgg16", "pascalcontext-fcn16s-heavy.caffemodel", "pascalcontext-fcn16s", 527.5, 37.6),
    _context("fcn8s_vgg16", "pascalcontext-fcn8s-heavy.caffemodel", "pascalcontext-fcn8s", 517.2, 37.8),
)


def _torchfcn(model: str, file: str, drive_id: str, md5: str, size_mb: float, mean_iu: float) -> Weights:
    return Weights(
        model=model,
        tag="voc-torchfcn",
        format="torchfcn",
        file=WeightFile(file, drive_url(drive_id), f"md5:{md5}", size_mb, drive_id),
        classes="voc",
        preprocessing="caffe_voc",
        metrics={"mean_iu": mean_iu},
        metrics_source="torchfcn (wkentaro/pytorch-fcn) README, measured with its own code",
        dataset="PASCAL VOC 2011 seg11valid",
        licence="MIT (wkentaro/pytorch-fcn); converted from the reference release's Caffe models",
        eval_data=_VOC_EVAL,
        note="torchfcn's PyTorch copy of the release's model (Google Drive): a second source",
    )


#: torchfcn's converted copies of the VOC nets (its ``FCN*.download()``: Google Drive ids and md5s)
TORCHFCN: tuple[Weights, ...] = tuple(
    _torchfcn(model, file, drive_id, md5, size_mb, mean_iu)
    for model, file, drive_id, md5, size_mb, mean_iu in (
        (
            "fcn32s_vgg16",
            "fcn32s_from_caffe.pth",
            "11k2Q0bvRQgQbT6-jYWeh6nmAsWlSCY3f",
            "d3eb467a80e7da0468a20dfcbc13e6c8",
            519.4,
            62.84,
        ),
        (
            "fcn16s_vgg16",
            "fcn16s_from_caffe.pth",
            "1bctu58B6YH9bu6lBBSBB2rUeGlGhYLoP",
            "a2d4035f669f09483b39c9a14a0d6670",
            514.3,
            64.91,
        ),
        (
            "fcn8s_vgg16",
            "fcn8s_from_caffe.pth",
            "1ieXWyoG68xqoHJPWdyrDyaIaaWlfmUxI",
            "de93e540ec79512f8770033849c8ae89",
            513.0,
            65.49,
        ),
        (
            "fcn8s_atonce_vgg16",
            "fcn8s-atonce_from_caffe.pth",
            "0B9P1L--7Wd2vblE1VUIxV1o2d2M",
            "bfed4437e941fef58932891217fe6464",
            513.0,
            64.74,
        ),
    )
)

_TRUNK_NOTE = "ImageNet trunk: model.backbone_weights (or model.init_from) of a config, get_model(backbone_weights=...)"


def _trunk(
    family: str, tag: str, file: WeightFile, fmt: str, preprocessing: str, licence: str, **kw: object
) -> Weights:
    return Weights(
        model=family,
        tag=tag,
        format=fmt,
        file=file,
        classes="imagenet",
        preprocessing=preprocessing,
        licence=licence,
        dataset="ImageNet (ILSVRC 2012) classification",
        **kw,  # type: ignore[arg-type]
    )


_BVLC = "unrestricted use (BVLC model zoo)"
#: the ILSVRC classifiers whose trunks initialise the reference FCNs (BGR, mean-subtracted, 0-255 input)
CAFFE_TRUNKS: tuple[Weights, ...] = (
    _trunk(
        "vgg16",
        "imagenet-caffe",
        WeightFile(
            "VGG_ILSVRC_16_layers.caffemodel",
            "http://www.robots.ox.ac.uk/~vgg/software/very_deep/caffe/VGG_ILSVRC_16_layers.caffemodel",
            "sha1:9363e1f6d65f7dba68c4f27a1e62105cdf6c4e24",
            527.0,
        ),
        "caffe-trunk",
        "caffe_voc",
        "CC BY 4.0 (Simonyan and Zisserman, Visual Geometry Group, Oxford)",
        net="vgg16-ilsvrc",
        note="the trunk the reference VGG16 FCNs were fine-tuned from",
    ),
    _trunk(
        "vgg16",
        "imagenet-caffe-torchfcn",
        WeightFile(
            "vgg16_from_caffe.pth",
            drive_url("1adDBTGY3GcEB_47dvcibajyzi872RAs3"),
            "md5:aa75b158f4181e7f6230029eb96c1b13",
            527.8,
            "1adDBTGY3GcEB_47dvcibajyzi872RAs3",
        ),
        "torch-trunk",
        "caffe_voc",
        "MIT (wkentaro/pytorch-fcn); converted from the VGG16 Caffe model (CC BY 4.0)",
        note="torchfcn's PyTorch copy of the Caffe VGG16 (torchvision key names, Caffe's BGR input)",
    ),
    _trunk(
        "alexnet",
        "imagenet-caffenet",
        WeightFile(
            "bvlc_reference_caffenet.caffemodel",
            RELEASE + "bvlc_reference_caffenet.caffemodel",
            "sha1:4c8d77deb20ea792f84eb5e6d0a11ca0a8660a46",
            232.0,
        ),
        "caffe-trunk",
        "caffe_voc",
        _BVLC,
        net="caffenet",
        note="the trunk of the reference FCN-AlexNet (fcn32s_alexnet)",
    ),
    _trunk(
        "googlenet",
        "imagenet-caffe",
        WeightFile(
            "bvlc_googlenet.caffemodel",
            RELEASE + "bvlc_googlenet.caffemodel",
            "sha1:405fc5acd08a3bb12de8ee5e23a96bec22f08204",
            51.0,
        ),
        "caffe-trunk",
        "caffe_voc",
        _BVLC,
        net="googlenet-bvlc",
        note="listed and fetched, but it does not fit fcnseg's GoogLeNet trunk (torchvision's layout: batch norm, "
        "3x3 where BVLC has 5x5 branches, no LRN); use googlenet.imagenet",
    ),
)

#: torchvision's ImageNet classifiers, through its own weights enums (RGB in [0, 1], ImageNet mean/std)
TORCHVISION: tuple[Weights, ...] = tuple(
    Weights(
        model=family,
        tag="imagenet",
        format="torch-trunk",
        file=None,
        enum=enum,
        classes="imagenet",
        preprocessing="imagenet",
        metrics_source="torchvision weights enum (ImageNet-1K val)",
        dataset="ImageNet-1K val (classification)",
        licence="BSD-3-Clause (torchvision); ImageNet's terms of access apply",
        note=_TRUNK_NOTE,
    )
    for family, enum in (
        ("vgg16", "VGG16_Weights.IMAGENET1K_V1"),
        ("alexnet_tv", "AlexNet_Weights.IMAGENET1K_V1"),
        ("googlenet", "GoogLeNet_Weights.IMAGENET1K_V1"),
        ("resnet18", "ResNet18_Weights.IMAGENET1K_V1"),
        ("resnet50", "ResNet50_Weights.IMAGENET1K_V2"),
        ("resnet101", "ResNet101_Weights.IMAGENET1K_V2"),
        ("mobilenet_v3_large", "MobileNet_V3_Large_Weights.IMAGENET1K_V2"),
    )
)

#: every entry, in listing order
ENTRIES: tuple[Weights, ...] = REFERENCE + TORCHFCN + CAFFE_TRUNKS + TORCHVISION
