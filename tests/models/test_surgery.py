"""Convolutionalization (proved numerically) and ImageNet weight transplant into the trunks."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

import fcnseg
from fcnseg.errors import CheckpointError, ModelError
from fcnseg.models import convolutionalize, load_backbone_weights


def _random_classifier(name: str) -> nn.Module:
    net = getattr(torchvision.models, name)(weights=None).eval()
    with torch.no_grad():  # small random weights keep activations in a sane range for allclose
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(m.weight, 0, (2.0 / m.weight[0].numel()) ** 0.5)
                nn.init.uniform_(m.bias, -0.1, 0.1)
    return net


@pytest.mark.parametrize("name, kernel", [("vgg16", 7), ("alexnet", 6)])
def test_convolutionalized_classifier_gives_the_logits_at_224(name: str, kernel: int) -> None:
    clf = _random_classifier(name)
    fcn = convolutionalize(clf).eval()
    first = next(m for m in fcn.classifier if isinstance(m, nn.Conv2d))
    assert first.kernel_size == (kernel, kernel)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        logits = clf(x)
        dense = fcn(x)
    assert dense.shape == (2, 1000, 1, 1)
    torch.testing.assert_close(dense[:, :, 0, 0], logits, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name, size, window", [("vgg16", 288, 7), ("alexnet", 287, 6)])
def test_each_output_cell_is_the_classifier_on_its_window(name: str, size: int, window: int) -> None:
    """On a larger input, cell (i, j) = fully connected layers on the (i, j) window of the conv features."""
    clf = _random_classifier(name)
    fcn = convolutionalize(clf).eval()
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        feats = clf.features(x)  # (1, C, h, w)
        dense = fcn(x)  # (1, 1000, h - window + 1, w - window + 1)
        assert dense.shape[-2:] == (feats.shape[-2] - window + 1, feats.shape[-1] - window + 1)
        assert dense.shape[-1] >= 2
        for i in range(dense.shape[-2]):
            for j in range(dense.shape[-1]):
                patch = feats[:, :, i : i + window, j : j + window].flatten(1)
                torch.testing.assert_close(dense[:, :, i, j], clf.classifier(patch), rtol=1e-4, atol=1e-4)


def test_convolutionalize_rejects_other_models() -> None:
    with pytest.raises(ModelError, match=r"features and \.classifier"):
        convolutionalize(nn.Linear(3, 3))


@pytest.mark.slow
def test_vgg16_transplant_copies_trunk_and_coerces_fc_layers() -> None:
    clf = torchvision.models.vgg16(weights=None)
    model = fcnseg.get_model("fcn8s_vgg16")
    report = load_backbone_weights(model, clf)
    assert sorted(report.coerced) == ["fc6.weight", "fc7.weight"]  # Linear → conv; biases copy as they are
    assert set(report.dropped) == {"classifier.6.weight", "classifier.6.bias"}  # fc8: no place in the FCN
    assert report.missing == []
    torch.testing.assert_close(model.conv3_2.weight, clf.features[12].weight)
    torch.testing.assert_close(model.fc6.weight, clf.classifier[0].weight.view(4096, 512, 7, 7))
    torch.testing.assert_close(model.fc7.weight[:, :, 0, 0], clf.classifier[3].weight)
    assert model.score_fr.weight.abs().sum() == 0  # score layers stay zero


def test_transplant_by_caffe_names_and_into_every_late_fusion_stream() -> None:
    src = fcnseg.get_model("fcn32s_vgg16", width=1 / 16)
    with torch.no_grad():
        for p in src.parameters():
            p.normal_()
    state = {k: v for k, v in src.state_dict().items() if not k.startswith(("score", "upscore"))}
    fused = fcnseg.get_model("fcn32s_vgg16", width=1 / 16, streams={"color": 3, "hha": 3})
    report = load_backbone_weights(fused, state)
    assert report.missing == [] and report.dropped == []
    torch.testing.assert_close(fused.conv1_1color.weight, src.conv1_1.weight)
    torch.testing.assert_close(fused.fc7hha.weight, src.fc7.weight)


def test_extra_input_channels_start_at_zero() -> None:
    src = fcnseg.get_model("fcn32s_vgg16", width=1 / 16)
    with torch.no_grad():
        src.conv1_1.weight.normal_()
    rgbd = fcnseg.get_model("fcn32s_vgg16", width=1 / 16, in_channels=4)
    report = load_backbone_weights(rgbd, src.state_dict())
    assert "conv1_1.weight" in report.coerced
    torch.testing.assert_close(rgbd.conv1_1.weight[:, :3], src.conv1_1.weight)
    assert rgbd.conv1_1.weight[:, 3].abs().sum() == 0


def test_size_mismatch_is_an_error_not_a_silent_truncation() -> None:
    model = fcnseg.get_model("fcn32s_vgg16", width=1 / 16)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith(("score", "upscore"))}
    state["conv2_1.weight"] = torch.zeros(9, 4, 3, 3)
    with pytest.raises(CheckpointError, match=r"conv2_1.weight has shape \(9, 4, 3, 3\) but conv2_1.weight needs"):
        load_backbone_weights(model, state)


def test_missing_trunk_layers_are_reported() -> None:
    model = fcnseg.get_model("fcn32s_vgg16", width=1 / 16)
    state = {k: v for k, v in model.state_dict().items() if k.startswith("conv")}
    with pytest.raises(CheckpointError, match=r"fc6\.bias, fc6\.weight, fc7\.bias, fc7\.weight"):
        load_backbone_weights(model, state)
    assert load_backbone_weights(model, state, strict=False).missing == [
        "fc6.bias",
        "fc6.weight",
        "fc7.bias",
        "fc7.weight",
    ]


def test_torchvision_alexnet_goes_into_the_tv_layout_not_caffenet() -> None:
    clf = torchvision.models.alexnet(weights=None)
    model = fcnseg.get_model("fcn32s_alexnet_tv")
    report = load_backbone_weights(model, clf)
    assert "fc6.weight" in report.coerced and report.missing == []
    torch.testing.assert_close(model.fc6.weight, clf.classifier[1].weight.view(4096, 256, 6, 6))
    with pytest.raises(CheckpointError, match="fcn32s_alexnet_tv"):
        load_backbone_weights(fcnseg.get_model("fcn32s_alexnet", width=1 / 16), clf.state_dict())


@pytest.mark.parametrize(
    "name, factory, dropped",
    [
        ("fcn8s_resnet50", lambda: torchvision.models.resnet50(weights=None), {"fc.weight", "fc.bias"}),
        ("fcn8s_mobilenet_v3_large", lambda: torchvision.models.mobilenet_v3_large(weights=None), "classifier."),
        (
            "fcn32s_googlenet",
            lambda: torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True),
            {"fc.weight", "fc.bias"},
        ),
    ],
)
def test_torchvision_backbones_transplant_completely(name: str, factory, dropped) -> None:
    clf = factory().eval()
    with torch.no_grad():
        for p in clf.parameters():
            p.add_(0.01)
    model = fcnseg.get_model(name)
    report = load_backbone_weights(model, clf)
    assert report.missing == [] and report.coerced == []
    if isinstance(dropped, set):
        assert set(report.dropped) == dropped
    else:
        assert report.dropped and all(k.startswith(dropped) for k in report.dropped)
    # the trunk now computes exactly the classifier's features
    x = torch.randn(1, 3, 64, 64)
    model.eval()
    with torch.no_grad():
        if name == "fcn8s_resnet50":
            ref = clf.layer4(clf.layer3(clf.layer2(clf.layer1(clf.maxpool(clf.relu(clf.bn1(clf.conv1(x))))))))
            ours = x
            for stage in model.backbone.values():
                ours = stage(ours)
            torch.testing.assert_close(ours, ref)
        elif name == "fcn8s_mobilenet_v3_large":
            ours = x
            for stage in model.backbone.values():
                ours = stage(ours)
            torch.testing.assert_close(ours, clf.features(x))


def test_get_model_with_backbone_weights() -> None:
    clf = torchvision.models.resnet50(weights=None)
    model = fcnseg.get_model("fcn32s_resnet50", backbone_weights=clf.state_dict())
    torch.testing.assert_close(model.backbone.layer1[0].conv1.weight, clf.layer1[0].conv1.weight)


def test_googlenet_input_transform_matches_torchvision_and_survives_checkpoints(tmp_path) -> None:
    from fcnseg.models.backbones.googlenet import GoogLeNetInputTransform
    from fcnseg.runtime.checkpoint import CheckpointInfo, load_checkpoint, model_kwargs, save_checkpoint

    tv = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True, transform_input=True)
    x = torch.rand(2, 3, 8, 8)
    torch.testing.assert_close(GoogLeNetInputTransform(enabled=True)(x), tv._transform_input(x))
    assert torch.equal(GoogLeNetInputTransform()(x), x)
    model = fcnseg.get_model("fcn32s_googlenet", width=0.125)
    model.backbone.transform_input.enabled = True
    info = CheckpointInfo(arch=model.arch, model_kwargs=model_kwargs(model))
    save_checkpoint(tmp_path / "g", model, info)
    clone, _ = load_checkpoint(tmp_path / "g.safetensors")
    assert clone.backbone.transform_input.enabled
