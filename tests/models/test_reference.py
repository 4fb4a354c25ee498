"""Reference exactness of the VGG16 and AlexNet nets: Caffe names, shapes, geometry, crops."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import fcnseg

VGG_CONVS = {
    "conv1_1": (64, 3),
    "conv1_2": (64, 64),
    "conv2_1": (128, 64),
    "conv2_2": (128, 128),
    "conv3_1": (256, 128),
    "conv3_2": (256, 256),
    "conv3_3": (256, 256),
    "conv4_1": (512, 256),
    "conv4_2": (512, 512),
    "conv4_3": (512, 512),
    "conv5_1": (512, 512),
    "conv5_2": (512, 512),
    "conv5_3": (512, 512),
}
VGG_TRUNK = {f"{n}.weight": (o, i, 3, 3) for n, (o, i) in VGG_CONVS.items()} | {
    f"{n}.bias": (o,) for n, (o, _) in VGG_CONVS.items()
}
VGG_TRUNK |= {
    "fc6.weight": (4096, 512, 7, 7),
    "fc6.bias": (4096,),
    "fc7.weight": (4096, 4096, 1, 1),
    "fc7.bias": (4096,),
}
K = 21
HEADS = {
    "fcn32s_vgg16": {"score_fr.weight": (K, 4096, 1, 1), "score_fr.bias": (K,), "upscore.weight": (K, K, 64, 64)},
    "fcn16s_vgg16": {
        "score_fr.weight": (K, 4096, 1, 1),
        "score_fr.bias": (K,),
        "score_pool4.weight": (K, 512, 1, 1),
        "score_pool4.bias": (K,),
        "upscore2.weight": (K, K, 4, 4),
        "upscore16.weight": (K, K, 32, 32),
    },
    "fcn8s_vgg16": {
        "score_fr.weight": (K, 4096, 1, 1),
        "score_fr.bias": (K,),
        "score_pool4.weight": (K, 512, 1, 1),
        "score_pool4.bias": (K,),
        "score_pool3.weight": (K, 256, 1, 1),
        "score_pool3.bias": (K,),
        "upscore2.weight": (K, K, 4, 4),
        "upscore_pool4.weight": (K, K, 4, 4),
        "upscore8.weight": (K, K, 16, 16),
    },
}
HEADS["fcn8s_atonce_vgg16"] = HEADS["fcn8s_vgg16"]
ALEXNET = {
    "conv1.weight": (96, 3, 11, 11),
    "conv1.bias": (96,),
    "conv2.weight": (256, 48, 5, 5),
    "conv2.bias": (256,),
    "conv3.weight": (384, 256, 3, 3),
    "conv3.bias": (384,),
    "conv4.weight": (384, 192, 3, 3),
    "conv4.bias": (384,),
    "conv5.weight": (256, 192, 3, 3),
    "conv5.bias": (256,),
    "fc6.weight": (4096, 256, 6, 6),
    "fc6.bias": (4096,),
    "fc7.weight": (4096, 4096, 1, 1),
    "fc7.bias": (4096,),
    "score_fr.weight": (K, 4096, 1, 1),
    "score_fr.bias": (K,),
    "upscore.weight": (K, K, 63, 63),
}

OFFSETS = {
    "fcn32s_vgg16": ({"score": 19}, {"upscore": 64}),
    "fcn16s_vgg16": ({"score_pool4": 5, "score": 27}, {"upscore2": 4, "upscore16": 32}),
    "fcn8s_vgg16": (
        {"score_pool4": 5, "score_pool3": 9, "score": 31},
        {"upscore2": 4, "upscore_pool4": 4, "upscore8": 16},
    ),
    "fcn8s_atonce_vgg16": (
        {"score_pool4": 5, "score_pool3": 9, "score": 31},
        {"upscore2": 4, "upscore_pool4": 4, "upscore8": 16},
    ),
    "fcn32s_alexnet": ({"score": 18}, {"upscore": 63}),
}


def _meta(name: str, **kw: object) -> nn.Module:
    with torch.device("meta"):
        return fcnseg.get_model(name, **kw)


@pytest.mark.parametrize("name", list(HEADS))
def test_vgg16_names_and_shapes_are_the_references(name: str) -> None:
    shapes = {k: tuple(v.shape) for k, v in _meta(name).state_dict().items()}
    assert shapes == VGG_TRUNK | HEADS[name]


def test_alexnet_names_and_shapes_are_the_references() -> None:
    model = _meta("fcn32s_alexnet")
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == ALEXNET
    assert model.conv1.stride == (4, 4) and model.conv1.padding == (100, 100)
    assert [model.conv2.groups, model.conv3.groups, model.conv4.groups, model.conv5.groups] == [2, 1, 2, 2]
    for norm in (model.norm1, model.norm2):
        assert (norm.size, norm.alpha, norm.beta, norm.k) == (5, 1e-4, 0.75, 1.0)
    names = [n for n, _ in model.named_children()]
    assert names.index("norm1") == names.index("pool1") + 1  # CaffeNet: pool, then LRN


@pytest.mark.parametrize("name", list(OFFSETS))
def test_crop_offsets_and_kernels_are_the_references(name: str) -> None:
    model = _meta(name)
    assert model.crop_offsets == OFFSETS[name][0]
    assert model.upsample_kernels == OFFSETS[name][1]


@pytest.mark.parametrize("name", list(HEADS))
def test_vgg16_layers(name: str) -> None:
    model = _meta(name)
    assert model.conv1_1.padding == (100, 100)
    assert all(getattr(model, f"conv{b}_1").padding == (1, 1) for b in range(2, 6))
    for b in range(1, 6):
        pool = getattr(model, f"pool{b}")
        assert isinstance(pool, nn.MaxPool2d) and pool.ceil_mode and pool.kernel_size == 2 and pool.stride == 2
    assert model.fc6.kernel_size == (7, 7) and model.fc6.padding == (0, 0)
    for d in ("drop6", "drop7"):
        assert isinstance(getattr(model, d), nn.Dropout) and getattr(model, d).p == 0.5
    for m in model.modules():
        if isinstance(m, nn.ConvTranspose2d):
            assert m.bias is None and m.padding == (0, 0)


def test_caffe_ceil_pooling_sizes() -> None:
    """ceil((H − 2) / 2) + 1 at every pool: 1×1 → 199 after conv1_1 (pad 100) → 100, 50, 25, 13, 7 (floor: 99, 49, 24, 12, 6)."""
    model = fcnseg.get_model("fcn8s_vgg16", width=1 / 16).eval()
    sizes = {}
    hooks = [
        getattr(model, f"pool{b}").register_forward_hook(lambda m, i, o, b=b: sizes.__setitem__(b, o.shape[-1]))
        for b in range(1, 6)
    ]
    model(torch.zeros(1, 3, 1, 1))
    for h in hooks:
        h.remove()
    assert sizes == {1: 100, 2: 50, 3: 25, 4: 13, 5: 7}


def test_atonce_scales_pool4_and_pool3_before_scoring() -> None:
    model = fcnseg.get_model("fcn8s_atonce_vgg16", width=1 / 16).eval()
    seen: dict[str, torch.Tensor] = {}
    for name in ("pool3", "pool4"):
        getattr(model, name).register_forward_hook(lambda m, i, o, n=name: seen.__setitem__(n, o.clone()))
    for name in ("score_pool3", "score_pool4"):
        getattr(model, name).register_forward_hook(lambda m, i, o, n=name: seen.__setitem__(n, i[0].clone()))
    model(torch.randn(1, 3, 40, 40))
    torch.testing.assert_close(seen["score_pool4"], seen["pool4"] * 0.01)
    torch.testing.assert_close(seen["score_pool3"], seen["pool3"] * 0.0001)
    plain = fcnseg.get_model("fcn8s_vgg16", width=1 / 16).eval()
    assert plain.skip_scales == {}


def test_parameter_counts_match_table_1() -> None:
    """Paper Table 1: FCN-AlexNet 57M, FCN-VGG16 134M, FCN-GoogLeNet 6M (trainable; the fixed upsampling is not counted)."""
    counts = {}
    for name in ("fcn32s_alexnet", "fcn32s_vgg16", "fcn32s_googlenet"):
        model = _meta(name)
        counts[name] = sum(p.numel() for p in model.parameters())
    assert round(counts["fcn32s_alexnet"] / 1e6) == 57
    assert round(counts["fcn32s_vgg16"] / 1e6) == 134
    assert round(counts["fcn32s_googlenet"] / 1e6) == 6
