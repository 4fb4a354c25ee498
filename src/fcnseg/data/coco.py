"""COCO instance JSON as semantic segmentation: COCO itself, COCO-Stuff-style sets, annotation-tool exports.

The semantic mask follows torchvision's segmentation reference (``references/segmentation/coco_utils.py``):
background 0, then the JSON's categories in id order as 1…K; polygons and RLE decoded with
``pycocotools``; pixels claimed by two different classes become 255, and so do crowd regions
(``iscrowd: 1``). Tools that export masks as crowd RLE (CVAT does) want ``crowd="object"``.
Images without annotations are background (``drop_empty=True`` leaves them out).
"""

from __future__ import annotations

import importlib
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from ..files import open_regular
from ..io import read_image
from .base import IGNORE_INDEX, SegmentationDataset, to_sample

__all__ = ["COCOSegmentation", "coco_mask_api"]


def coco_mask_api() -> Any:
    """``pycocotools.mask``, or a one-line error naming the extra that installs it."""
    try:
        return importlib.import_module("pycocotools.mask")
    except ImportError:
        raise DataError("COCO masks need pycocotools: pip install 'fcnseg[coco]'") from None


def _load_json(path: Path) -> dict[str, Any]:
    try:
        with open_regular(path, what="annotation file") as f:
            data = json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: not a JSON file ({e})") from None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("images", "categories")):
        raise DataError(f"{path}: not COCO instance JSON (needs 'images' and 'categories' lists)")
    return data


class COCOSegmentation(SegmentationDataset):
    """``root/annotations/instances_<split>.json`` with images in ``root/<split>/``.

    Also found without options: a Roboflow export (``root/<split>/_annotations.coco.json``) and images
    whose ``file_name`` is relative to ``root`` (Label Studio: ``images/…``) or in ``root/images``.

    Args:
        root: the dataset folder.
        split: e.g. ``train2017``, ``val2017``; CVAT names its subset ``default``.
        annotations: the JSON file (relative to ``root``), if not at one of the usual places.
        images: the image folder (relative to ``root``), if not at one of the usual places.
        crowd: ``"ignore"`` (255, as torchvision) or ``"object"`` (crowd masks count as their class).
        drop_empty: leave out images that have no annotation.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train2017",
        *,
        annotations: str | None = None,
        images: str | None = None,
        crowd: str = "ignore",
        drop_empty: bool = False,
        transforms: Callable[..., Any] | None = None,
    ) -> None:
        super().__init__(transforms)
        if crowd not in ("ignore", "object"):
            raise DataError(f"COCO crowd must be 'ignore' or 'object', got {crowd!r}")
        self._mask = coco_mask_api()
        self.root, self.split, self.crowd = Path(root), split, crowd
        self.json_path = self._find_json(annotations)
        data = _load_json(self.json_path)
        self._index_categories(data["categories"])
        anns: dict[Any, list[dict[str, Any]]] = {}
        for a in data.get("annotations") or []:
            if not isinstance(a, dict) or "image_id" not in a or "category_id" not in a:
                raise DataError(f"{self.json_path}: an annotation lacks image_id or category_id: {str(a)[:80]}")
            if a["category_id"] not in self.category_index:
                raise DataError(
                    f"{self.json_path}: annotation {a.get('id')} has category {a['category_id']}, "
                    "which is not in 'categories'"
                )
            anns.setdefault(a["image_id"], []).append(a)
        if anns and not any(a.get("segmentation") for group in anns.values() for a in group):
            raise DataError(f"{self.json_path}: no annotation has a segmentation (a bounding-box-only export?)")
        entries = [im for im in data["images"] if not drop_empty or anns.get(im.get("id"))]
        if not entries:
            raise DataError(f"{self.json_path}: no images" + (" with annotations" if drop_empty else ""))
        self.images = entries
        self.annotations = [anns.get(im.get("id"), []) for im in entries]
        self.image_dir = self._find_images(images, entries)

    def _find_json(self, annotations: str | None) -> Path:
        if annotations:
            return self.root / annotations
        candidates = [
            self.root / "annotations" / f"instances_{self.split}.json",
            self.root / self.split / "_annotations.coco.json",
        ]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise DataError(
                f"{self.root}: no COCO annotations (looked for {', '.join(map(str, candidates))}); pass annotations="
            )
        return found

    def _index_categories(self, categories: list[Any]) -> None:
        try:
            cats = sorted((int(c["id"]), str(c["name"])) for c in categories)
        except (KeyError, TypeError, ValueError):
            raise DataError(f"{self.json_path}: every category needs an integer 'id' and a 'name'") from None
        if not cats:
            raise DataError(f"{self.json_path}: 'categories' is empty")
        if len({i for i, _ in cats}) != len(cats):
            raise DataError(f"{self.json_path}: two categories share an id")
        if len(cats) >= IGNORE_INDEX:
            raise DataError(f"{self.json_path}: {len(cats)} categories + background do not fit below 255 (ignore)")
        self.category_index = {cid: k for k, (cid, _) in enumerate(cats, start=1)}
        self.classes = ("background", *(name for _, name in cats))

    def _find_images(self, images: str | None, entries: list[dict[str, Any]]) -> Path:
        candidates = [self.root / images] if images else [self.root / self.split, self.root / "images", self.root]
        first = str(entries[0].get("file_name", ""))
        found = next((c for c in candidates if (c / first).is_file()), None)
        if found is None:
            raise DataError(f"{self.json_path}: image {first!r} not found in {', '.join(map(str, candidates))}")
        return found

    def __len__(self) -> int:
        return len(self.images)

    def describe(self, index: int) -> str:
        return f"{self.image_dir / str(self.images[index].get('file_name'))} ({self.json_path.name})"

    def _decode(self, segm: Any, h: int, w: int, where: str) -> np.ndarray | None:
        """One annotation's ``(h, w)`` bool mask (``None`` if it has no segmentation)."""
        m = self._mask
        if isinstance(segm, list):
            polygons = [p for p in segm if isinstance(p, list) and len(p) >= 6]  # 3+ points (4 numbers = a box)
            if any(not isinstance(p, list) or len(p) % 2 for p in segm):
                raise DataError(f"{where}: a polygon is not a flat list of x, y pairs")
            if not polygons:
                return None
            rle = m.merge(m.frPyObjects(polygons, h, w))
        elif isinstance(segm, dict) and "counts" in segm and "size" in segm:
            if list(segm["size"]) != [h, w]:
                raise DataError(f"{where}: RLE size {list(segm['size'])} but the image is {h}×{w} (h×w)")
            rle = m.frPyObjects(segm, h, w) if isinstance(segm["counts"], list) else segm
        else:
            raise DataError(f"{where}: segmentation is neither polygons nor RLE")
        with warnings.catch_warnings():  # pycocotools 2.0 under NumPy 2 warns about __array__(copy=)
            warnings.simplefilter("ignore", DeprecationWarning)
            return m.decode(rle).astype(bool)

    def semantic_mask(self, index: int) -> np.ndarray:
        """The ``(H, W)`` uint8 semantic mask of image ``index`` (size from the JSON)."""
        info = self.images[index]
        h, w = info.get("height"), info.get("width")
        if not (isinstance(h, int) and isinstance(w, int)) or h <= 0 or w <= 0:
            raise DataError(f"{self.json_path}: image {info.get('file_name')!r} has no valid height/width")
        sem = np.zeros((h, w), np.uint8)
        void = np.zeros((h, w), bool)
        for a in self.annotations[index]:
            where = f"{self.json_path}: annotation {a.get('id')} of {info.get('file_name')}"
            mask = self._decode(a.get("segmentation"), h, w, where)
            if mask is None:
                continue
            if a.get("iscrowd") and self.crowd == "ignore":
                void |= mask
                continue
            c = self.category_index[a["category_id"]]
            void |= mask & (sem != 0) & (sem != c)  # claimed by two different classes
            sem[mask] = c
        sem[void] = IGNORE_INDEX
        return sem

    def load(self, index: int) -> tuple[Any, Any]:
        path = self.image_dir / str(self.images[index].get("file_name"))
        image = read_image(path)
        mask = self.semantic_mask(index)
        if image.shape[:2] != mask.shape:
            raise DataError(
                f"{path}: image is {image.shape[1]}×{image.shape[0]} but {self.json_path.name} says "
                f"{mask.shape[1]}×{mask.shape[0]}"
            )
        return to_sample(image, mask)
