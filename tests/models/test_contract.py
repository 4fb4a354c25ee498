"""The model contract, checked once over the whole registry (tiny widths, CPU)."""

from __future__ import annotations

import io
import random

import pytest
import torch

import fcnseg
from fcnseg.models import FCN
from tests.conftest import tiny_width

MODELS = fcnseg.list_models()
REQUIRED = [
    "fcn32s_vgg16",
    "fcn16s_vgg16",
    "fcn8s_vgg16",
    "fcn8s_atonce_vgg16",
    "fcn32s_alexnet",
    "fcn32s_googlenet",
    "fcn16s_googlenet",
    "fcn8s_googlenet",
    "fcn32s_resnet50",
    "fcn16s_resnet50",
    "fcn8s_resnet50",
    "fcn8s_resnet101",
    "fcn8s_mobilenet_v3_large",
]


def _sizes(n: int = 20, seed: int = 0) -> list[tuple[int, int]]:
    rng = random.Random(seed)
    sizes = [(1, 1), (1, 7), (31, 33), (32, 32), (65, 1)]
    while len(sizes) < n:
        sizes.append((rng.randint(1, 96), rng.randint(1, 96)))
    return sizes


def test_required_names_registered() -> None:
    assert set(REQUIRED) <= set(MODELS)
    assert fcnseg.list_models is fcnseg.models.list_models  # one registry behind both names
    assert fcnseg.models.list_models() == MODELS and len(MODELS) == len(set(MODELS))


def test_unknown_name_lists_choices() -> None:
    with pytest.raises(fcnseg.errors.ModelError, match=r"Unknown model 'fcn8_vgg16'.*fcn8s_vgg16.*Did you mean"):
        fcnseg.get_model("fcn8_vgg16")


def test_list_models_glob() -> None:
    assert fcnseg.list_models("fcn8s_*vgg16") == ["fcn8s_atonce_vgg16", "fcn8s_vgg16"]


@pytest.mark.parametrize("name", MODELS)
def test_any_input_size_gives_same_size_scores(name: str) -> None:
    model = fcnseg.get_model(name, num_classes=3, width=tiny_width(name)).eval()
    assert isinstance(model, FCN)
    with torch.no_grad():
        for h, w in _sizes():
            out = model(torch.randn(1, 3, h, w))
            assert out.shape == (1, 3, h, w), (name, h, w)


@pytest.mark.parametrize("name", MODELS)
def test_score_layers_start_at_zero_and_backward_runs(name: str) -> None:
    model = fcnseg.get_model(name, num_classes=4, width=tiny_width(name)).train()
    for layer in model.score_layer_names():
        conv = getattr(model, layer)
        assert conv.weight.abs().sum() == 0 and conv.bias.abs().sum() == 0, layer
    x = torch.randn(2, 3, 45, 38)
    out = model(x)
    assert torch.count_nonzero(out) == 0  # zero score layers → zero scores, as in the reference at iteration 0
    with torch.no_grad():  # make the scores non-trivial, then check gradients reach the trunk
        for layer in model.score_layer_names():
            getattr(model, layer).weight.normal_(0, 0.1)
    out = model(x)
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("name", MODELS)
def test_state_dict_round_trip(name: str) -> None:
    model = fcnseg.get_model(name, num_classes=5, width=tiny_width(name)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.05)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    clone = fcnseg.get_model(name, num_classes=5, width=tiny_width(name)).eval()
    clone.load_state_dict(torch.load(buf, weights_only=True), strict=True)
    x = torch.randn(1, 3, 40, 41)
    with torch.no_grad():
        torch.testing.assert_close(model(x), clone(x), rtol=0, atol=0)


def test_wrong_input_channels_is_a_clear_error() -> None:
    model = fcnseg.get_model("fcn32s_vgg16", width=1 / 16)
    with pytest.raises(fcnseg.errors.ModelError, match=r"expects input \(N, 3, H, W\), got \(1, 4, 8, 8\)"):
        model(torch.zeros(1, 4, 8, 8))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_classes": 3, "heads": {"a": 2}}, "not both"),
        ({"width": 0}, "width must be > 0"),
        ({"num_classes": 0}, "at least one class"),
        ({"in_channels": 4, "streams": {"a": 3}}, "streams"),
        ({"streams": {"": 3, "b": 3}}, "need names"),
    ],
)
def test_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(fcnseg.errors.ModelError, match=match):
        fcnseg.get_model("fcn32s_vgg16", **{"width": 1 / 16, **kwargs})


def test_googlenet_width_that_splits_a_branch_is_refused() -> None:
    with pytest.raises(fcnseg.errors.ModelError, match="GoogLeNet width"):
        fcnseg.get_model("fcn32s_googlenet", width=1 / 16)


@pytest.mark.parametrize("name", ["fcn8s_vgg16", "fcn8s_resnet50", "fcn8s_googlenet"])
def test_multi_task_heads(name: str) -> None:
    model = fcnseg.get_model(name, heads={"sem": 33, "geo": 3}, width=tiny_width(name)).eval()
    out = model(torch.randn(2, 3, 29, 40))
    assert set(out) == {"sem", "geo"}
    assert out["sem"].shape == (2, 33, 29, 40) and out["geo"].shape == (2, 3, 29, 40)
    keys = model.state_dict().keys()
    for layer in ("score_fr", "score_pool4", "score_pool3", "upscore2", "upscore_pool4", "upscore8"):
        assert f"{layer}_sem.weight" in keys and f"{layer}_geo.weight" in keys
    assert model.heads == {"sem": 33, "geo": 3}
    with pytest.raises(AttributeError):
        _ = model.num_classes


@pytest.mark.parametrize("name", ["fcn32s_vgg16", "fcn8s_resnet50", "fcn8s_mobilenet_v3_large", "fcn32s_googlenet"])
def test_four_channel_early_fusion(name: str) -> None:
    model = fcnseg.get_model(name, in_channels=4, num_classes=40, width=tiny_width(name)).eval()
    assert model.in_channels == 4
    first = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert first.in_channels == 4
    assert model(torch.randn(1, 4, 33, 47)).shape == (1, 40, 33, 47)


def test_late_fusion_sums_stream_scores_before_upsampling() -> None:
    model = fcnseg.get_model("fcn32s_vgg16", streams={"color": 3, "hha": 3}, num_classes=40, width=1 / 16).eval()
    keys = model.state_dict().keys()
    assert {
        "conv1_1color.weight",
        "conv1_1hha.weight",
        "fc7color.weight",
        "score_frcolor.weight",
        "score_frhha.weight",
        "upscore.weight",
    } <= set(keys)
    assert model.conv1_1color.padding == (100, 100)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.1)
    x = torch.randn(1, 6, 37, 29)
    with torch.no_grad():
        both = model(x)
        saved = model.score_frhha.weight.clone(), model.score_frhha.bias.clone()
        model.score_frhha.weight.zero_(), model.score_frhha.bias.zero_()
        color_only = model(x)
        model.score_frhha.weight.copy_(saved[0]), model.score_frhha.bias.copy_(saved[1])
        model.score_frcolor.weight.zero_(), model.score_frcolor.bias.zero_()
        hha_only = model(x)
    assert both.shape == (1, 40, 37, 29)
    torch.testing.assert_close(both, color_only + hha_only, rtol=1e-5, atol=1e-5)
    assert color_only.abs().sum() > 0 and hha_only.abs().sum() > 0
