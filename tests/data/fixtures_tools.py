"""Tiny datasets in the on-disk layouts of Cityscapes, ADE20K, COCO, labelme and CVAT, written as those tools do.

File names, bit depths and JSON fields follow the real distributions: Cityscapes' 8-bit greyscale
``*_gtFine_labelIds.png`` beside RGB ``*_leftImg8bit.png``; ADE20K's greyscale ``ADE_*.png``; COCO's
``instances_*.json`` (info, licenses, images, annotations, categories; polygons, compressed and
uncompressed RLE); labelme 5.x JSON (``version``, ``flags``, ``shapes``, ``imagePath``, ``imageData``,
``imageHeight``, ``imageWidth``); CVAT's "Segmentation mask 1.1" (``labelmap.txt``, RGB ``SegmentationClass``).
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image


def rgb(path: Path, h: int, w: int, seed: int, fmt: str = "JPEG") -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return arr


def grey_png(path: Path, values: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(values.astype(np.uint8), mode="L").save(path)


# ---- Cityscapes -------------------------------------------------------------------------------------------------

CITYSCAPES_IDS = np.array([0, 1, 4, 6, 7, 8, 9, 11, 17, 23, 24, 26, 29, 31, 33])  # void, classes, ignored classes
#: the train id cityscapesscripts gives each of CITYSCAPES_IDS (written out, not computed by fcnseg)
CITYSCAPES_TRAIN_IDS = np.array([255, 255, 255, 255, 0, 1, 255, 2, 5, 10, 11, 13, 255, 16, 18])


def make_cityscapes(root: Path, coarse: bool = False) -> dict[str, np.ndarray]:
    """``leftImg8bit/{train,val}/<city>/…`` + ``gtFine`` (and ``gtCoarse``); returns the label ids by stem."""
    ids = {}
    frames = {
        "train": [("aachen", "000000", "000019"), ("bochum", "000000", "001097")],
        "val": [("frankfurt", "000000", "000294")],
    }
    rng = np.random.default_rng(0)
    for split, items in frames.items():
        for n, (city, seq, frame) in enumerate(items):
            stem = f"{city}_{seq}_{frame}"
            rgb(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png", 16, 32, seed=n, fmt="PNG")
            label = CITYSCAPES_IDS[rng.integers(0, len(CITYSCAPES_IDS), (16, 32))]
            ids[stem] = label
            for gt in ("gtFine", "gtCoarse") if coarse else ("gtFine",):
                grey_png(root / gt / split / city / f"{stem}_{gt}_labelIds.png", label)
                grey_png(root / gt / split / city / f"{stem}_{gt}_instanceIds.png", label)  # present, unused
            (root / "gtFine" / split / city / f"{stem}_gtFine_polygons.json").write_text('{"objects": []}')
    return ids


# ---- ADE20K -----------------------------------------------------------------------------------------------------


def make_ade20k(root: Path) -> dict[str, np.ndarray]:
    """``root/ADEChallengeData2016/{images,annotations}/{training,validation}``; returns raw labels by stem."""
    base = root / "ADEChallengeData2016"
    raw = {}
    for split, tag, count in (("training", "train", 2), ("validation", "val", 1)):
        for i in range(1, count + 1):
            stem = f"ADE_{tag}_{i:08d}"
            rgb(base / "images" / split / f"{stem}.jpg", 24, 20, seed=i)
            label = np.random.default_rng(i).integers(0, 151, (24, 20))
            label[0, :3] = [0, 1, 150]
            raw[stem] = label
            grey_png(base / "annotations" / split / f"{stem}.png", label)
    (base / "objectInfo150.txt").write_text("Idx\tRatio\tTrain\tVal\tName\n1\t0.1576\t11664\t1172\twall\n")
    return raw


# ---- COCO -------------------------------------------------------------------------------------------------------


def _rle(mask: np.ndarray) -> dict:
    import pycocotools.mask as m

    r = m.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(s) for s in r["size"]], "counts": r["counts"].decode("ascii")}


def _uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO's crowd format: run lengths over the column-major mask, starting with a run of zeros."""
    flat = mask.astype(np.uint8).flatten(order="F")
    counts, value, run = [], 0, 0
    for v in flat:
        if v == value:
            run += 1
        else:
            counts.append(run)
            value, run = v, 1
    counts.append(run)
    return {"size": list(mask.shape), "counts": counts}


def coco_json(images: list[dict], annotations: list[dict], categories: list[dict]) -> dict:
    return {
        "info": {"description": "fixture", "version": "1.0", "year": 2017, "contributor": "", "date_created": ""},
        "licenses": [{"url": "http://creativecommons.org/licenses/by/2.0/", "id": 4, "name": "Attribution License"}],
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }


def make_coco(root: Path, split: str = "val2017") -> dict[str, np.ndarray]:
    """Three images: polygons (two classes overlapping), RLE + a crowd region, none; returns expected masks."""
    h, w = 20, 30
    names = ["000000000139.jpg", "000000000285.jpg", "000000000632.jpg"]
    images = []
    for i, name in enumerate(names):
        rgb(root / split / name, h, w, seed=i)
        images.append(
            {
                "license": 4,
                "file_name": name,
                "coco_url": f"http://images.cocodataset.org/{split}/{name}",
                "height": h,
                "width": w,
                "date_captured": "2013-11-21 01:34:01",
                "flickr_url": "",
                "id": i + 1,
            }
        )
    cats = [
        {"supercategory": "person", "id": 1, "name": "person"},
        {"supercategory": "vehicle", "id": 3, "name": "car"},
        {"supercategory": "indoor", "id": 90, "name": "toothbrush"},
    ]
    # image 1: a person box (x 2..11, y 2..9) as a polygon, a car box (x 8..19, y 5..14) overlapping it
    person = [2, 2, 12, 2, 12, 10, 2, 10]
    car = [8, 5, 20, 5, 20, 15, 8, 15]
    e1 = np.zeros((h, w), np.uint8)
    e1[2:10, 2:12] = 1
    e1[5:15, 8:20] = np.where(e1[5:15, 8:20] == 1, 255, 2)
    # image 2: a toothbrush as compressed RLE, a crowd of persons as uncompressed RLE
    tooth = np.zeros((h, w), bool)
    tooth[3:8, 20:28] = True
    crowd = np.zeros((h, w), bool)
    crowd[12:18, 0:10] = True
    e2 = np.zeros((h, w), np.uint8)
    e2[tooth] = 3
    e2[crowd] = 255
    anns = [
        {
            "segmentation": [person],
            "area": 80.0,
            "iscrowd": 0,
            "image_id": 1,
            "bbox": [2, 2, 10, 8],
            "category_id": 1,
            "id": 101,
        },
        {
            "segmentation": [car],
            "area": 120.0,
            "iscrowd": 0,
            "image_id": 1,
            "bbox": [8, 5, 12, 10],
            "category_id": 3,
            "id": 102,
        },
        {
            "segmentation": _rle(tooth),
            "area": 40.0,
            "iscrowd": 0,
            "image_id": 2,
            "bbox": [20, 3, 8, 5],
            "category_id": 90,
            "id": 103,
        },
        {
            "segmentation": _uncompressed_rle(crowd),
            "area": 60.0,
            "iscrowd": 1,
            "image_id": 2,
            "bbox": [0, 12, 10, 6],
            "category_id": 1,
            "id": 104,
        },
    ]
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(coco_json(images, anns, cats)))
    return {names[0]: e1, names[1]: e2, names[2]: np.zeros((h, w), np.uint8)}


# ---- labelme ----------------------------------------------------------------------------------------------------


def labelme_shape(label: str, points: list, shape_type: str = "polygon") -> dict:
    return {
        "label": label,
        "points": points,
        "group_id": None,
        "description": "",
        "shape_type": shape_type,
        "flags": {},
        "mask": None,
    }


def labelme_file(path: Path, image: Path, shapes: list[dict], h: int, w: int, embed: bool = False) -> None:
    """A labelme 5.x JSON beside (or embedding) ``image``."""
    data = {
        "version": "5.4.1",
        "flags": {},
        "shapes": shapes,
        "imagePath": str(Path("..") / image.parent.name / image.name) if not embed else image.name,
        "imageData": base64.b64encode(image.read_bytes()).decode("ascii") if embed else None,
        "imageHeight": h,
        "imageWidth": w,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))


LABELME_LABELS = "__ignore__\n_background_\ncat\ndog\n"


def make_labelme(root: Path) -> None:
    """``root/photos/*.jpg`` and ``root/json/*.json`` (one embedding its image), with ``root/labels.txt``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "labels.txt").write_text(LABELME_LABELS)
    a = root / "photos" / "a.jpg"
    rgb(a, 40, 48, seed=1)
    labelme_file(
        root / "json" / "a.json",
        a,
        [
            labelme_shape("cat", [[2, 3], [10, 8]], "rectangle"),
            labelme_shape("dog", [[6, 4], [20, 4], [20, 12], [6, 12]]),  # drawn over the cat where they overlap
            labelme_shape("dog", [[30, 20], [30, 25]], "circle"),
            labelme_shape("cat", [[0, 34], [47, 34]], "line"),
            labelme_shape("__ignore__", [[40, 6]], "point"),
        ],
        40,
        48,
    )
    b = root / "photos" / "b.png"
    rgb(b, 16, 16, seed=2, fmt="PNG")
    labelme_file(root / "json" / "b.json", b, [labelme_shape("cat", [[1, 1], [14, 1], [14, 14]])], 16, 16, embed=True)


# ---- CVAT -------------------------------------------------------------------------------------------------------

CVAT_LABELMAP = "# label:color_rgb:parts:actions\nbackground:0,0,0::\ncat:250,50,83::\ndog:61,61,245::\n"
CVAT_COLOURS = np.array([[0, 0, 0], [250, 50, 83], [61, 61, 245]], np.uint8)


def make_cvat(root: Path, subset: str = "default") -> dict[str, np.ndarray]:
    """A "Segmentation mask 1.1" export with images; returns the class masks by id."""
    (root / "labelmap.txt").parent.mkdir(parents=True, exist_ok=True)
    (root / "labelmap.txt").write_text(CVAT_LABELMAP)
    masks = {}
    for n, stem in enumerate(["frame_000000", "frame_000001"]):
        rgb(root / "JPEGImages" / f"{stem}.jpg", 12, 18, seed=n)
        m = np.zeros((12, 18), np.uint8)
        m[2:6, 3:9] = 1
        m[7:11, 10 - n : 16] = 2
        masks[stem] = m
        for folder in ("SegmentationClass", "SegmentationObject"):
            (root / folder).mkdir(parents=True, exist_ok=True)
            Image.fromarray(CVAT_COLOURS[m]).save(root / folder / f"{stem}.png")
    lists = root / "ImageSets" / "Segmentation"
    lists.mkdir(parents=True, exist_ok=True)
    (lists / f"{subset}.txt").write_text("".join(f"{s}\n" for s in masks))
    return masks


def png_bytes(mask: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8), mode="L").save(buf, format="PNG")
    return buf.getvalue()
