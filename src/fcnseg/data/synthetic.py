"""SyntheticShapes: seeded scenes of shapes, so everything runs with no download.

Each sample is generated on the fly from ``(seed, split, index)`` — the same arguments give the same
bytes on every machine. A scene has a textured or noisy background and 1–6 objects from 8 shape
classes; the class is the *shape*, never the colour (colours, textures, scales and rotations are
random for every class). Objects occlude each other, and the set is built so that output stride
matters: thin structures (3-px lines, rings) and small objects (down to ~6 px) that a stride-32 map
cannot resolve. As in VOC, a 1-pixel border around every object is labelled 255 (ignored).

``task="classification"`` gives ``(image, label)`` with the label of the largest visible object, for
pretraining a classifier (the paper's ImageNet step, in miniature). ``framing="object"`` frames each
image as an ImageNet photograph does: one large object (radius 18–40% of the side) near the centre,
on the same backgrounds.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..errors import DataError
from ..imageio import max_pixels
from .base import IGNORE_INDEX, SegmentationDataset, to_sample

__all__ = ["SHAPE_CLASSES", "SyntheticShapes"]

SHAPE_CLASSES = ("background", "disk", "square", "triangle", "star", "cross", "ring", "line", "hexagon")
_SPLITS = {"train": 0, "val": 1, "test": 2}
_CACHE: dict[tuple[Any, ...], tuple[np.ndarray, np.ndarray, int]] = {}  # generated samples, when asked to cache


def _polygon(kind: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    def ring(n: int, radii: list[float]) -> list[tuple[float, float]]:
        pts = []
        for i in range(n):
            t = angle + 2 * math.pi * i / n
            rr = radii[i % len(radii)]
            pts.append((cx + rr * math.cos(t), cy + rr * math.sin(t)))
        return pts

    if kind == "disk":
        return ring(48, [r])
    if kind == "square":
        return ring(4, [r])
    if kind == "triangle":
        return ring(3, [r])
    if kind == "hexagon":
        return ring(6, [r])
    if kind == "star":
        return ring(10, [r, r * 0.45])
    if kind == "cross":
        w = r * 0.35
        base = [
            (-w, -r),
            (w, -r),
            (w, -w),
            (r, -w),
            (r, w),
            (w, w),
            (w, r),
            (-w, r),
            (-w, w),
            (-r, w),
            (-r, -w),
            (-w, -w),
        ]
        c, s = math.cos(angle), math.sin(angle)
        return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in base]
    raise ValueError(kind)


class SyntheticShapes(SegmentationDataset):
    """Deterministic synthetic segmentation (or classification) scenes.

    Args:
        n: number of samples.
        size: image side in pixels (square images).
        split: ``"train"``, ``"val"`` or ``"test"`` (different scenes for the same seed).
        seed: base seed.
        task: ``"segmentation"`` or ``"classification"``.
        max_objects: objects per scene are drawn from 1 … ``max_objects`` (1 gives single-object images).
        framing: ``"scene"`` (objects of 2.5–25% radius anywhere) or ``"object"`` (one large object near
            the centre, as in an ImageNet photograph: the pretraining images of ``fcnseg experiment``).
        cache: keep every generated sample in memory, shared by all datasets with the same arguments in
            this process (``size² × 4`` bytes a sample): generating a 224-px scene costs about as much as
            a training step of a small net on it, so runs that revisit scenes (epochs, several nets on
            one set, as ``fcnseg experiment`` trains) go ~1.4× faster.
        transforms: callable on ``(image, mask)`` (segmentation only).

    Example:
        >>> ds = SyntheticShapes(4, size=64, seed=1)
        >>> image, mask = ds[0]
        >>> tuple(image.shape), image.dtype, tuple(mask.shape), mask.dtype
        ((3, 64, 64), torch.uint8, (64, 64), torch.int64)
    """

    classes = SHAPE_CLASSES

    def __init__(
        self,
        n: int = 1000,
        size: int = 128,
        split: str = "train",
        seed: int = 0,
        *,
        task: str = "segmentation",
        max_objects: int = 6,
        framing: str = "scene",
        cache: bool = False,
        transforms: Callable[..., Any] | None = None,
    ) -> None:
        super().__init__(transforms)
        if split not in _SPLITS:
            raise DataError(f"SyntheticShapes split must be one of {sorted(_SPLITS)}, got {split!r}")
        if task not in ("segmentation", "classification"):
            raise DataError(f"SyntheticShapes task must be 'segmentation' or 'classification', got {task!r}")
        if n < 1 or size < 16:
            raise DataError(f"SyntheticShapes needs n >= 1 and size >= 16, got n={n}, size={size}")
        if size * size > max_pixels():  # a scene is drawn whole: size 100000 would be 10^10 pixels
            raise DataError(f"SyntheticShapes size {size}: {size}×{size} exceeds the limit of {max_pixels()} pixels")
        if framing not in ("scene", "object"):
            raise DataError(f"SyntheticShapes framing must be 'scene' or 'object', got {framing!r}")
        if max_objects < 1:
            raise DataError(f"SyntheticShapes needs max_objects >= 1, got {max_objects}")
        self.n, self.size, self.split, self.seed, self.task = n, size, split, seed, task
        self.max_objects = 1 if framing == "object" else max_objects
        self.framing = framing
        self.cache = cache

    def __len__(self) -> int:
        return self.n

    def generate(self, index: int) -> tuple[np.ndarray, np.ndarray, int]:
        """``(image (H, W, 3) uint8, mask (H, W) uint8, label of the largest object)`` for ``index``."""
        if self.cache:
            key = (self.seed, self.split, index, self.size, self.max_objects, self.framing)
            if key not in _CACHE:
                arrays = self._generate(index)
                for a in arrays[:2]:
                    a.flags.writeable = False  # shared: callers copy (to_sample does)
                _CACHE[key] = arrays
            return _CACHE[key]
        return self._generate(index)

    def _generate(self, index: int) -> tuple[np.ndarray, np.ndarray, int]:
        rng = np.random.default_rng([self.seed, _SPLITS[self.split], index])
        s = self.size
        image = self._background(rng)
        mask = np.zeros((s, s), np.uint8)
        inst = np.zeros((s, s), np.uint8)
        n_obj = int(rng.integers(1, 7))
        n_obj = min(n_obj, self.max_objects)  # the same draws whatever the cap: scenes stay reproducible
        for k in range(1, n_obj + 1):
            cls = int(rng.integers(1, len(SHAPE_CLASSES)))
            self._draw(image, mask, inst, k, cls, rng)
        image = np.clip(image.astype(np.int16) + rng.normal(0, 6, image.shape).astype(np.int16), 0, 255).astype(
            np.uint8
        )
        counts = np.bincount(mask.ravel(), minlength=len(SHAPE_CLASSES))  # visible areas, before the void border
        counts[0] = 0
        largest = int(counts.argmax()) if counts.any() else 0
        border = np.zeros_like(mask, dtype=bool)  # inner 1-px border of every visible object → void
        border[1:] |= inst[1:] != inst[:-1]
        border[:-1] |= inst[:-1] != inst[1:]
        border[:, 1:] |= inst[:, 1:] != inst[:, :-1]
        border[:, :-1] |= inst[:, :-1] != inst[:, 1:]
        mask[border & (inst > 0)] = IGNORE_INDEX
        return image, mask, largest

    def _background(self, rng: np.random.Generator) -> np.ndarray:
        s = self.size
        base = rng.integers(0, 256, 3)
        yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) / s
        kind = int(rng.integers(0, 3))
        if kind == 0:  # smooth gradient + noise
            direction = rng.normal(size=2)
            ramp = (yy * direction[0] + xx * direction[1])[..., None] * rng.integers(-80, 80, 3)
            img = base + ramp + rng.normal(0, 18, (s, s, 3))
        elif kind == 1:  # stripes texture
            freq, phase = rng.uniform(4, 20), rng.uniform(0, 2 * math.pi)
            theta = rng.uniform(0, math.pi)
            wave = np.sin(2 * math.pi * freq * (xx * math.cos(theta) + yy * math.sin(theta)) + phase)[..., None]
            img = base + wave * rng.integers(10, 60, 3) + rng.normal(0, 10, (s, s, 3))
        else:  # blotchy noise (low-res noise upsampled)
            low = rng.normal(0, 40, (8, 8, 3)).astype(np.float32)
            up = np.asarray(Image.fromarray(np.clip(low + 128, 0, 255).astype(np.uint8)).resize((s, s), Image.BILINEAR))
            img = base + (up.astype(np.float32) - 128) + rng.normal(0, 8, (s, s, 3))
        return np.clip(img, 0, 255).astype(np.uint8)

    def _draw(
        self, image: np.ndarray, label: np.ndarray, inst: np.ndarray, k: int, cls: int, rng: np.random.Generator
    ) -> None:
        """Paint one object (later objects occlude earlier ones) into the arrays, in place."""
        s = self.size
        kind = SHAPE_CLASSES[cls]
        small = rng.random() < 0.3
        r = max(3.0, float(rng.uniform(0.025, 0.06) if small else rng.uniform(0.08, 0.25)) * s)
        cx, cy = (float(v) for v in rng.uniform(0.05 * s, 0.95 * s, 2))
        if self.framing == "object":  # the same draws as a scene, mapped to a large object near the centre
            r = float(0.18 + (r / s - 0.025) / 0.225 * 0.22) * s
            cx, cy = (0.35 * s + 0.3 * (v - 0.05 * s) / 0.9 for v in (cx, cy))
        angle = float(rng.uniform(0, 2 * math.pi))
        color = rng.integers(0, 256, 3).astype(np.float32)
        mask = Image.new("L", (s, s), 0)
        draw = ImageDraw.Draw(mask)
        if kind == "ring":
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=255, width=max(3, int(r * 0.25)))
        elif kind == "line":
            length = float(rng.uniform(0.3, 0.8) if self.framing == "scene" else rng.uniform(0.6, 0.9)) * s
            dx, dy = math.cos(angle) * length / 2, math.sin(angle) * length / 2
            draw.line([(cx - dx, cy - dy), (cx + dx, cy + dy)], fill=255, width=3)
        else:
            draw.polygon(_polygon(kind, cx, cy, r, angle), fill=255)
        m = np.asarray(mask) > 0
        count = int(m.sum())
        if not count:
            return
        texture = color + rng.normal(0, float(rng.uniform(0, 30)), (count, 3))
        image[m] = np.clip(texture, 0, 255).astype(np.uint8)
        label[m] = cls
        inst[m] = k

    def load(self, index: int) -> tuple[Any, Any]:
        image, mask, largest = self.generate(index)
        if self.task == "classification":
            return to_sample(image, mask)[0], largest
        return to_sample(image, mask)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        if self.task == "classification":
            if not 0 <= index < len(self):
                raise IndexError(index)
            image, label = self.load(index)
            if self.transforms is not None:
                image = self.transforms(image)
            return image, torch.tensor(label)
        return super().__getitem__(index)
