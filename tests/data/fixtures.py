"""Tiny datasets written in the real on-disk formats (JPEG, palette PNG, MATLAB v5 .mat)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

from fcnseg.data.base import voc_palette


def palette_png(path: Path, mask: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(mask.astype(np.uint8), mode="P")
    img.putpalette(voc_palette().flatten().tolist())
    img.save(path)


def jpeg(path: Path, h: int, w: int, seed: int) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path, quality=95)
    return arr


def labels(h: int, w: int, k: int, seed: int, void: bool = True) -> np.ndarray:
    m = np.random.default_rng(seed + 100).integers(0, k, (h, w)).astype(np.uint8)
    if void:
        m[0, :] = 255
    return m


def make_voc(root: Path, reference_dir: Path | None = None, year: str = "2012") -> dict[str, np.ndarray]:
    base = root / "VOCdevkit" / f"VOC{year}"
    masks = {}
    ids = {"train": ["2008_000001", "2008_000002"], "val": ["2007_000033"]}  # 2007_000033 is in seg11valid
    for _split, names in ids.items():
        for n, i in enumerate(names):
            jpeg(base / "JPEGImages" / f"{i}.jpg", 20 + n, 30, seed=n)
            masks[i] = labels(20 + n, 30, 21, seed=n)
            palette_png(base / "SegmentationClass" / f"{i}.png", masks[i])
    if reference_dir is not None:  # the real VOC demo image and its real label
        shutil.copy(reference_dir / "demo" / "image.jpg", base / "JPEGImages" / "demo.jpg")
        shutil.copy(reference_dir / "demo" / "label.png", base / "SegmentationClass" / "demo.png")
        ids["val"].append("demo")
    lists = base / "ImageSets" / "Segmentation"
    lists.mkdir(parents=True, exist_ok=True)
    for split, names in ids.items():
        (lists / f"{split}.txt").write_text("\n".join(names) + "\n")
    (lists / "trainval.txt").write_text("\n".join(ids["train"] + ids["val"]) + "\n")
    return masks


def make_sbd(root: Path) -> dict[str, np.ndarray]:
    base = root / "dataset"
    masks = {}
    ids = {"train": ["2008_000001", "2007_000033", "2008_000003"], "val": ["2008_000010"]}
    for split, names in ids.items():
        for n, i in enumerate(names):
            jpeg(base / "img" / f"{i}.jpg", 16, 24, seed=n)
            masks[i] = labels(16, 24, 21, seed=n)
            (base / "cls").mkdir(parents=True, exist_ok=True)
            gt = {
                "Segmentation": masks[i],
                "Boundaries": np.zeros((20, 1), object),
                "CategoriesPresent": np.array([1, 2]),
            }
            scipy.io.savemat(base / "cls" / f"{i}.mat", {"GTcls": gt})
        (base / f"{split}.txt").write_text("\n".join(names) + "\n")
    return masks


SUB = "spatial_envelope_256x256_static_8outdoorcategories"


def make_siftflow(root: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    raw = {}
    ids = {"trainval": ["coast_a1", "street_b2"], "test": ["forest_c3", "highway_bost181"]}
    for split, names in ids.items():
        for n, i in enumerate(names):
            jpeg(root / "Images" / SUB / f"{i}.jpg", 12, 12, seed=n)
            rng = np.random.default_rng(n)
            sem = rng.integers(0, 34, (12, 12)).astype(np.int32)  # 0 void, 1–33
            geo = rng.choice([-1, 1, 2, 3], (12, 12)).astype(np.int32)  # -1 void, 1–3
            for sub, arr in (("SemanticLabels", sem), ("GeoLabels", geo)):
                (root / sub / SUB).mkdir(parents=True, exist_ok=True)
                scipy.io.savemat(root / sub / SUB / f"{i}.mat", {"S": arr, "names": np.array(["x"], object)})
            raw[i] = (sem, geo)
        (root / f"{split}.txt").write_text("\n".join(names) + "\n")
    return raw


def make_nyud(root: Path) -> dict[str, np.ndarray]:
    raw = {}
    ids = {"train": ["5001", "5002"], "val": ["5003"], "test": ["5004"]}
    for split, names in ids.items():
        for n, i in enumerate(names):
            rng = np.random.default_rng(n)
            for sub in ("images", "hha"):
                (root / "data" / sub).mkdir(parents=True, exist_ok=True)
                Image.fromarray(rng.integers(0, 256, (10, 14, 3), dtype=np.uint8)).save(
                    root / "data" / sub / f"img_{i}.png"
                )
            (root / "data" / "depth").mkdir(parents=True, exist_ok=True)
            depth = rng.integers(0, 10000, (10, 14)).astype(np.uint16)
            depth[0, 0] = 0  # missing depth
            Image.fromarray(depth).save(root / "data" / "depth" / f"img_{i}.png")
            seg = rng.integers(0, 41, (10, 14)).astype(np.uint8)  # 0 void, 1–40
            (root / "segmentation").mkdir(parents=True, exist_ok=True)
            scipy.io.savemat(root / "segmentation" / f"img_{i}.mat", {"segmentation": seg})
            raw[i] = seg
        (root / f"{split}.txt").write_text("\n".join(names) + "\n")
    return raw


def make_context(root: Path, reference_dir: Path) -> dict[str, np.ndarray]:
    raw = {}
    shutil.copy(reference_dir / "pascal-context" / "classes-400.txt", root / "labels.txt")
    ids = {"train": ["2008_000002"], "val": ["2008_000003"]}
    for split, names in ids.items():
        for n, i in enumerate(names):
            jpeg(root / "VOC2010" / "JPEGImages" / f"{i}.jpg", 8, 9, seed=n)
            full = np.random.default_rng(n).integers(0, 460, (8, 9)).astype(np.uint16)
            full[0, :4] = [397, 19, 80, 2]  # table, bedclothes, cloth, aeroplane
            (root / "trainval").mkdir(parents=True, exist_ok=True)
            scipy.io.savemat(root / "trainval" / f"{i}.mat", {"LabelMap": full})
            raw[i] = full
        (root / f"{split}.txt").write_text("\n".join(names) + "\n")
    return raw
