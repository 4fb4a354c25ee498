"""Transforms on ``torchvision.transforms.v2``: image and mask go through every step together.

* :func:`eval_transforms` — the reference's preprocessing and nothing else: no resize, whole images
  (Caffe BGR mean subtraction or torchvision's ImageNet normalisation, from the weights' record).
* :func:`train_transforms` — the modern recipe: random scale, mirror, and a crop whose padding is
  labelled 255 so it is ignored by the loss and the metrics.
* :func:`pad_collate` — batches of different sizes padded to the largest (image 0, mask 255); with
  batch 1 (the reference) it only stacks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torchvision import tv_tensors
from torchvision.transforms import v2

from ..preprocessing import Preprocessing
from .base import IGNORE_INDEX

__all__ = [
    "CUES",
    "MaskCue",
    "ModalityNormalize",
    "Normalize",
    "RandomTranslate",
    "augmentations",
    "eval_transforms",
    "pad_collate",
    "train_transforms",
]

#: what :class:`MaskCue` can hide (``data.mask_cue``)
CUES = ("none", "foreground", "background", "both")


class Normalize(v2.Transform):
    """Apply a :class:`~fcnseg.preprocessing.Preprocessing` to images; masks pass unchanged.

    Images with more than 3 channels (colour + depth) get the preprocessing on their first three.
    """

    def __init__(self, preprocessing: Preprocessing) -> None:
        super().__init__()
        self.preprocessing = preprocessing

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if isinstance(inpt, tv_tensors.Image):
            x = inpt.as_subclass(Tensor)
            rgb = self.preprocessing(x[..., :3, :, :])
            out = torch.cat([rgb, x[..., 3:, :, :].float()], dim=-3) if x.shape[-3] > 3 else rgb
            return tv_tensors.Image(out)
        return inpt


class ModalityNormalize(v2.Transform):
    """Apply a dataset's own per-modality preprocessing (NYUDv2: colour, HHA and depth means)."""

    def __init__(self, fn: Any) -> None:
        super().__init__()
        self.fn = fn

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if isinstance(inpt, tv_tensors.Image):
            return tv_tensors.Image(self.fn(inpt.as_subclass(Tensor)))
        return inpt


def _split(inputs: tuple[Any, ...]) -> tuple[Tensor, Tensor]:
    image, mask = inputs if len(inputs) == 2 else inputs[0]
    if not isinstance(mask, Tensor):
        raise TypeError(f"expected (image, mask) with one mask, got a {type(mask).__name__} mask")
    return image, mask


class MaskCue(v2.Transform):
    """Hide a cue from the net (PAMI §6, Table 8): set the pixels of ``cue`` to the preprocessing's mean colour.

    ``foreground`` is every pixel not labelled background (0), the ignore label included (in SyntheticShapes
    and VOC it outlines objects, so leaving it would draw their edges); ``background`` is the pixels labelled 0.
    ``both`` leaves only the silhouettes: objects become the mean colour and the background black. Labels are
    kept, so a net trained on masked images is still asked for every object's class.
    """

    def __init__(self, cue: str, preprocessing: Preprocessing) -> None:
        super().__init__()
        if cue not in CUES:
            raise ValueError(f"mask cue {cue!r}: expected one of {', '.join(CUES)}")
        self.cue = cue
        mean = [m / preprocessing.scale for m in preprocessing.mean]
        self.fill = torch.tensor(mean[::-1] if preprocessing.bgr else mean).round().clamp(0, 255)

    def forward(self, *inputs: Any) -> Any:
        image, mask = _split(inputs)
        if self.cue == "none":
            return image, mask
        x = image.as_subclass(Tensor).clone()
        fg = (mask.as_subclass(Tensor) != 0)[..., None, :, :].expand(3, *x.shape[-2:])
        fill = self.fill.to(x.dtype).view(3, 1, 1).expand(3, *x.shape[-2:])
        rgb = x[..., :3, :, :]
        if self.cue in ("foreground", "both"):
            rgb[fg] = fill[fg]
        if self.cue == "background":
            rgb[~fg] = fill[~fg]
        if self.cue == "both":
            rgb[~fg] = 0
        return tv_tensors.Image(x), mask


class RandomTranslate(v2.Transform):
    """Translate image and mask together by up to ``max_px`` pixels each way (the paper's jitter: 32 px).

    Pixels moved in from outside are black in the image and ignore (255) in the mask, so the loss skips them.
    """

    def __init__(self, max_px: int) -> None:
        super().__init__()
        self.max_px = int(max_px)

    def forward(self, *inputs: Any) -> Any:
        image, mask = _split(inputs)
        j = self.max_px
        if j == 0:
            return image, mask
        dy, dx = (int(v) for v in torch.randint(-j, j + 1, (2,)))
        return _shift(image, dy, dx, 0), _shift(mask, dy, dx, IGNORE_INDEX)


def _shift(t: Tensor, dy: int, dx: int, fill: float) -> Tensor:
    """``t`` moved ``dy`` down and ``dx`` right, ``fill`` where nothing moved in: no more memory than ``t`` itself
    (padding by the jitter first would allocate ``(H + 2j) × (W + 2j)``, gigabytes for a large ``j``)."""
    h, w = t.shape[-2:]
    out = torch.full_like(t.as_subclass(Tensor), fill)
    if abs(dy) < h and abs(dx) < w:
        src_y, dst_y = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
        src_x, dst_x = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
        out[..., dst_y, dst_x] = t.as_subclass(Tensor)[..., src_y, src_x]
    return tv_tensors.wrap(out, like=t) if isinstance(t, tv_tensors.TVTensor) else out


def eval_transforms(preprocessing: Preprocessing, *, mask_cue: str = "none") -> v2.Compose:
    """Preprocessing only (the reference evaluates whole images at their own size); ``mask_cue`` hides a cue first."""
    cue = [MaskCue(mask_cue, preprocessing)] if mask_cue != "none" else []
    return v2.Compose([*cue, Normalize(preprocessing)])


def train_transforms(
    preprocessing: Preprocessing,
    *,
    crop_size: int | None = None,
    scale_range: tuple[float, float] = (1.0, 1.0),
    flip: bool = False,
    jitter: int = 0,
    mask_cue: str = "none",
) -> v2.Compose:
    """Modern-recipe augmentation; with the defaults it is the reference (no augmentation at all)."""
    cue = [MaskCue(mask_cue, preprocessing)] if mask_cue != "none" else []
    aug = augmentations(crop_size=crop_size, scale_range=scale_range, flip=flip, jitter=jitter)
    return v2.Compose([*cue, *aug, Normalize(preprocessing)])


def augmentations(
    *,
    crop_size: int | None = None,
    scale_range: tuple[float, float] = (1.0, 1.0),
    flip: bool = False,
    jitter: int = 0,
) -> list[v2.Transform]:
    """The augmentation steps alone (jitter, random scale, mirror, crop with ignore padding), before any
    normalisation."""
    steps: list[v2.Transform] = [RandomTranslate(jitter)] if jitter else []
    if scale_range != (1.0, 1.0):
        steps.append(
            v2.RandomAffine(degrees=0, scale=scale_range, fill={tv_tensors.Image: 0, tv_tensors.Mask: IGNORE_INDEX})
        )
    if flip:
        steps.append(v2.RandomHorizontalFlip())
    if crop_size:
        steps.append(
            v2.RandomCrop(crop_size, pad_if_needed=True, fill={tv_tensors.Image: 0, tv_tensors.Mask: IGNORE_INDEX})
        )
    return steps


def pad_collate(batch: Sequence[tuple[Tensor, Any]]) -> tuple[Tensor, Any]:
    """Stack samples, padding each to the largest height and width (image 0, mask 255, bottom/right)."""
    images = [b[0] for b in batch]
    h = max(int(i.shape[-2]) for i in images)
    w = max(int(i.shape[-1]) for i in images)

    def pad(t: Tensor, value: float) -> Tensor:
        return torch.nn.functional.pad(t, (0, w - t.shape[-1], 0, h - t.shape[-2]), value=value)

    x = torch.stack([pad(i.as_subclass(Tensor), 0) for i in images])
    masks = [b[1] for b in batch]
    if isinstance(masks[0], dict):
        y: Any = {k: torch.stack([pad(m[k].as_subclass(Tensor), IGNORE_INDEX) for m in masks]) for k in masks[0]}
    else:
        y = torch.stack([pad(m.as_subclass(Tensor), IGNORE_INDEX) for m in masks])
    return x, y
