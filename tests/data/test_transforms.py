"""Reference preprocessing, torchvision preprocessing, augmentation with ignore padding, collate."""

from __future__ import annotations

import torch
from torchvision import tv_tensors

from fcnseg.data.transforms import Normalize, eval_transforms, pad_collate, train_transforms
from fcnseg.preprocessing import CAFFE_VOC, IMAGENET


def _sample(h: int = 6, w: int = 5):
    img = tv_tensors.Image(torch.randint(0, 256, (3, h, w), dtype=torch.uint8))
    return img, tv_tensors.Mask(torch.randint(0, 21, (h, w)))


def test_caffe_preprocessing_is_bgr_0_255_minus_mean() -> None:
    img, mask = _sample()
    x, m = eval_transforms(CAFFE_VOC)(img, mask)
    expected = img.float().flip(0) - torch.tensor([104.00699, 116.66877, 122.67892]).view(3, 1, 1)
    torch.testing.assert_close(x.as_subclass(torch.Tensor), expected)
    assert torch.equal(m, mask) and x.shape == img.shape  # no resize
    torch.testing.assert_close(CAFFE_VOC.invert(x.as_subclass(torch.Tensor)), img.as_subclass(torch.Tensor))


def test_imagenet_preprocessing() -> None:
    img, mask = _sample()
    x, _ = eval_transforms(IMAGENET)(img, mask)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    torch.testing.assert_close(x.as_subclass(torch.Tensor), (img.float() / 255 - mean) / std)


def test_extra_channels_pass_through_normalize() -> None:
    x = tv_tensors.Image(torch.rand(4, 3, 3) * 255)
    out = Normalize(CAFFE_VOC)(x)
    torch.testing.assert_close(out[3], x[3].as_subclass(torch.Tensor))


def test_training_crop_pads_masks_with_ignore() -> None:
    img, mask = _sample(10, 12)
    x, m = train_transforms(CAFFE_VOC, crop_size=20, flip=True, scale_range=(0.8, 1.2))(img, mask)
    assert x.shape == (3, 20, 20) and m.shape == (20, 20)
    assert (m == 255).sum() >= 20 * 20 - 12 * 12 * 1.2**2 - 1
    assert set(m.unique().tolist()) <= set(range(21)) | {255}


def test_pad_collate_pads_to_largest_with_ignore() -> None:
    a, b = _sample(4, 6), _sample(7, 3)
    x, y = pad_collate([a, b])
    assert x.shape == (2, 3, 7, 6) and y.shape == (2, 7, 6)
    assert (y[0, 4:] == 255).all() and (y[1, :, 3:] == 255).all() and (x[1, :, :, 3:] == 0).all()
    _, ys = pad_collate([(a[0], {"sem": a[1], "geo": a[1]})])
    assert set(ys) == {"sem", "geo"} and ys["sem"].shape == (1, 4, 6)
