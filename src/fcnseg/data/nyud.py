"""NYUDv2 (Gupta et al. layout of the reference): colour, depth and HHA, 40 classes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchvision import tv_tensors

from ..errors import DataError
from ..io import _open, read_image
from ..preprocessing import CAFFE_NYUD, CAFFE_NYUD_HHA
from ._common import bundled_split, check_mask, load_mat_field, read_ids, require_dir
from .base import IGNORE_INDEX, SegmentationDataset
from .classes import NYUD40_CLASSES

__all__ = ["HHA_PREPROCESSING", "LOG_DEPTH_MEAN", "NYUDv2"]

#: the reference's mean of log depth, subtracted from log(depth)
LOG_DEPTH_MEAN = 7.844
#: the reference's HHA mean (BGR order, as the colour mean)
HHA_PREPROCESSING = CAFFE_NYUD_HHA
_CHANNELS = {"color": 3, "depth": 1, "hha": 3}


class NYUDv2(SegmentationDataset):
    """``root/data/{images,depth,hha}/img_<id>.png`` + ``root/segmentation/img_<id>.mat``.

    Args:
        root: the folder that contains ``data`` and ``segmentation`` (the reference layout).
        split: ``train`` (381), ``val`` (414), ``trainval`` or ``test`` (654): ``root/<split>.txt`` if present,
            else the reference lists shipped with fcnseg.
        modalities: which inputs, stacked as channels in this order: ``color`` (RGB 0–255), ``depth``
            (``log(d) − 7.844``, as the reference early fusion), ``hha`` (0–255).

    The image is uint8 when every modality is 8-bit (colour, HHA) and float32 once depth is included.
    :meth:`preprocess` applies each modality's reference mean.
    """

    classes = NYUD40_CLASSES

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        modalities: Sequence[str] = ("color",),
        transforms: Callable[..., Any] | None = None,
    ) -> None:
        super().__init__(transforms)
        unknown = [m for m in modalities if m not in _CHANNELS]
        if unknown or not modalities:
            raise DataError(f"NYUDv2 modalities must be from {list(_CHANNELS)}, got {list(modalities)}")
        if split not in ("train", "val", "trainval", "test"):
            raise DataError(f"NYUDv2 split must be train, val, trainval or test, got {split!r}")
        self.root = Path(root)
        require_dir(self.root / "data", "NYUDv2 data")
        require_dir(self.root / "segmentation", "NYUDv2 segmentation")
        parts = ["train", "val"] if split == "trainval" else [split]
        self.ids = []
        for part in parts:
            listed = self.root / f"{part}.txt"
            self.ids += read_ids(listed) if listed.is_file() else bundled_split(f"nyud_{part}")
        self.modalities = tuple(modalities)
        self.split = split

    @property
    def in_channels(self) -> int:
        return sum(_CHANNELS[m] for m in self.modalities)

    def __len__(self) -> int:
        return len(self.ids)

    def _depth(self, path: Path) -> np.ndarray:
        d = np.asarray(_open(path), dtype=np.float32)
        if d.ndim != 2:
            raise DataError(f"{path}: depth must be a single-channel image, got shape {d.shape}")
        return np.log(np.maximum(d, 1.0)) - LOG_DEPTH_MEAN  # zero (missing) depth clamped to 1 before the log

    def load(self, index: int) -> tuple[Any, Any]:
        i = self.ids[index]
        planes: list[np.ndarray] = []
        for m in self.modalities:
            if m == "color":
                planes.append(read_image(self.root / "data" / "images" / f"img_{i}.png").astype(np.float32))
            elif m == "hha":
                planes.append(read_image(self.root / "data" / "hha" / f"img_{i}.png").astype(np.float32))
            else:
                planes.append(self._depth(self.root / "data" / "depth" / f"img_{i}.png")[..., None])
        shapes = {p.shape[:2] for p in planes}
        if len(shapes) > 1:
            raise DataError(f"NYUDv2 image {i}: modalities differ in size {sorted(shapes)}")
        stacked = np.concatenate(planes, axis=2)
        path = self.root / "segmentation" / f"img_{i}.mat"
        raw = load_mat_field(path, "segmentation").astype(np.int64)
        mask = np.where(raw >= 1, raw - 1, IGNORE_INDEX).astype(np.uint8)
        check_mask(mask, stacked.shape, len(self.classes), path)
        dtype = torch.float32 if "depth" in self.modalities else torch.uint8
        img = tv_tensors.Image(torch.from_numpy(np.ascontiguousarray(stacked.transpose(2, 0, 1))).to(dtype))
        return img, tv_tensors.Mask(torch.from_numpy(mask.astype(np.int64)))

    def preprocess(self, image: torch.Tensor) -> torch.Tensor:
        """Each modality's reference preprocessing: colour and HHA BGR mean-subtracted, depth as is."""
        out, c = [], 0
        for m in self.modalities:
            n = _CHANNELS[m]
            part = image[..., c : c + n, :, :]
            out.append(CAFFE_NYUD(part) if m == "color" else HHA_PREPROCESSING(part) if m == "hha" else part.float())
            c += n
        return torch.cat(out, dim=-3)
