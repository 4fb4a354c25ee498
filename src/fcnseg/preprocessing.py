"""How a set of weights expects its input: the reference's Caffe convention or torchvision's.

The Caffe-trained reference FCNs take BGR, 0–255, mean-subtracted images (no scaling, no resize);
torchvision's ImageNet weights take RGB in [0, 1] normalised by the ImageNet mean and std. Weights,
checkpoints and data transforms carry one of these records, so a net is never fed the other's input.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where images are converted: the presets table loads without it
    from torch import Tensor

__all__ = [
    "CAFFE_NYUD",
    "CAFFE_NYUD_HHA",
    "CAFFE_SIFTFLOW",
    "CAFFE_VOC",
    "IMAGENET",
    "PRESETS",
    "Preprocessing",
    "preset",
]


@dataclass(frozen=True)
class Preprocessing:
    """Per-channel affine map from uint8 RGB to network input: ``(x · scale − mean) / std`` in channel order.

    Attributes:
        bgr: reverse the channels (RGB → BGR) first, as Caffe models expect.
        scale: multiply the 0–255 values by this (1 for Caffe, 1/255 for torchvision).
        mean: subtracted after scaling, in the network's channel order.
        std: divided after subtracting.
    """

    bgr: bool
    scale: float
    mean: tuple[float, ...]
    std: tuple[float, ...] = (1.0, 1.0, 1.0)

    def __call__(self, image: Tensor) -> Tensor:
        """``(…, 3, H, W)`` uint8 or float RGB in 0–255 → float network input."""
        import torch

        x = image.float()
        if self.bgr:
            x = x.flip(-3)
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(-1, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(-1, 1, 1)
        return (x * self.scale - mean) / std

    def invert(self, x: Tensor) -> Tensor:
        """Network input → uint8 RGB (for pictures)."""
        import torch

        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(-1, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(-1, 1, 1)
        img = (x * std + mean) / self.scale
        if self.bgr:
            img = img.flip(-3)
        return img.round().clamp(0, 255).to(torch.uint8)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Preprocessing:
        """Inverse of :meth:`to_dict` (JSON turns the tuples into lists)."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


#: the reference VOC / SBD / PASCAL-Context models (fcn.berkeleyvision.org)
CAFFE_VOC = Preprocessing(bgr=True, scale=1.0, mean=(104.00699, 116.66877, 122.67892))
#: the reference SIFT Flow models
CAFFE_SIFTFLOW = Preprocessing(bgr=True, scale=1.0, mean=(114.578, 115.294, 108.353))
#: the reference NYUDv2 colour models
CAFFE_NYUD = Preprocessing(bgr=True, scale=1.0, mean=(116.190, 97.203, 92.318))
#: the reference NYUDv2 HHA stream (the release's nyud_layers.py: HHA channels reversed, its own mean subtracted)
CAFFE_NYUD_HHA = Preprocessing(bgr=True, scale=1.0, mean=(132.431, 94.076, 118.477))
#: torchvision ImageNet weights
IMAGENET = Preprocessing(bgr=False, scale=1 / 255, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))

#: the presets by the name configs (``data.preprocessing``) and ``--preprocessing`` use
PRESETS: dict[str, Preprocessing] = {
    "caffe_voc": CAFFE_VOC,
    "caffe_siftflow": CAFFE_SIFTFLOW,
    "caffe_nyud": CAFFE_NYUD,
    "caffe_nyud_hha": CAFFE_NYUD_HHA,
    "imagenet": IMAGENET,
}


def preset(name: str) -> Preprocessing:
    """The preset called ``name`` (``nyud``: the colour stream's; a NYUD dataset applies each modality's own mean).

    Raises:
        ConfigError: an unknown name (the valid ones listed).
    """
    if name == "nyud":
        return CAFFE_NYUD
    try:
        return PRESETS[name]
    except KeyError:
        from .errors import ConfigError

        raise ConfigError(f"preprocessing {name!r}: one of {', '.join(PRESETS)}") from None
