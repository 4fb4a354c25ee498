"""data.mask_cue (PAMI Table 8's masking) and data.jitter (the paper's translation jitter)."""

from __future__ import annotations

import pytest
import torch
from torchvision import tv_tensors

from fcnseg.config import load_config
from fcnseg.data.transforms import MaskCue, RandomTranslate
from fcnseg.errors import ConfigError
from fcnseg.preprocessing import CAFFE_VOC, IMAGENET
from fcnseg.train.build import build_datasets


def _sample() -> tuple[tv_tensors.Image, tv_tensors.Mask]:
    image = tv_tensors.Image(torch.arange(3 * 6 * 8, dtype=torch.uint8).view(3, 6, 8))
    mask = torch.zeros(6, 8, dtype=torch.int64)
    mask[1:3, 2:5] = 3
    mask[3, 2:5] = 255  # the ignore border counts as foreground
    return image, tv_tensors.Mask(mask)


@pytest.mark.parametrize("pre", [IMAGENET, CAFFE_VOC])
def test_mask_cue_sets_the_hidden_pixels_to_the_mean_colour(pre) -> None:
    image, mask = _sample()
    fg = mask != 0
    mean = torch.tensor([m / pre.scale for m in pre.mean])
    rgb = (mean.flip(0) if pre.bgr else mean).round()
    out, kept = MaskCue("foreground", pre)(image, mask)
    assert torch.equal(kept, mask)
    assert torch.equal(out[:, fg], rgb.to(torch.uint8)[:, None].expand(3, int(fg.sum())))
    assert torch.equal(out[:, ~fg], image[:, ~fg])  # the background untouched
    out, _ = MaskCue("background", pre)(image, mask)
    assert torch.equal(out[:, fg], image[:, fg]) and (out[:, ~fg] == rgb.to(torch.uint8)[:, None]).all()
    out, _ = MaskCue("both", pre)(image, mask)
    assert (out[:, ~fg] == 0).all() and (out[:, fg] == rgb.to(torch.uint8)[:, None]).all()
    assert torch.equal(image, _sample()[0])  # the input is not modified in place


def test_preprocessed_masked_pixels_are_zero() -> None:
    """After normalisation the hidden pixels carry (almost) no signal: the mean colour maps to ~0."""
    cfg = load_config(
        None,
        [
            "data.name=synthetic",
            "data.options={n: 2, size: 48}",
            "data.preprocessing=imagenet",
            "data.mask_cue=foreground",
        ],
    )
    train, val = build_datasets(cfg)
    for ds in (train, val):
        x, y = ds[0]
        assert (y != 0).any()
        assert x[:, y != 0].abs().max() < 0.02  # rounding the mean to uint8 leaves < 1/255 / std


def test_random_translate_moves_image_and_mask_together() -> None:
    image, mask = _sample()
    torch.manual_seed(0)
    seen = set()
    for _ in range(30):
        out, m = RandomTranslate(2)(image, mask)
        assert out.shape == image.shape and m.shape == mask.shape
        # every labelled (non-exposed) pixel keeps its image value's partner: find the shift
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                shifted = torch.roll(mask, (dy, dx), (0, 1))
                inside = m != 255
                if (
                    torch.equal(m[inside], shifted[inside])
                    and torch.equal(out[:, inside], torch.roll(image, (dy, dx), (1, 2))[:, inside])
                    and bool((m == 255).sum() >= (mask == 255).sum())
                ):
                    seen.add((dy, dx))
    assert len(seen) > 5  # several different shifts, each consistent between image and mask
    assert RandomTranslate(0)(image, mask)[0] is image


def test_jitter_and_cue_config_checks() -> None:
    with pytest.raises(ConfigError, match=r"data\.mask_cue"):
        load_config(None, ["data.mask_cue=shape"])
    with pytest.raises(ConfigError, match=r"data\.jitter"):
        load_config(None, ["data.jitter=-1"])
    cfg = load_config(None, ["data.name=synthetic", "data.options={n: 2, size: 48}", "data.jitter=8"])
    train, _ = build_datasets(cfg)
    assert train[0][0].shape[-2:] == (48, 48)
