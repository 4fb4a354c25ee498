"""Freezing helpers: frozen layers get no gradient, no optimizer slot and do not change in training."""

from __future__ import annotations

import pytest
import torch

import fcnseg
from fcnseg.errors import ModelError
from fcnseg.models import freeze
from fcnseg.train.build import param_groups


def test_up_to_a_layer_freezes_that_prefix_of_the_trunk() -> None:
    model = fcnseg.get_model("fcn8s_vgg16", width=1 / 16)
    frozen = freeze(model, "up_to: conv4_3")
    assert (
        "conv4_3.weight" in frozen and "conv5_1.weight" not in frozen and not any(n.startswith("score") for n in frozen)
    )
    assert not model.conv4_3.weight.requires_grad and model.conv5_1.weight.requires_grad
    grouped = {id(p) for g in param_groups(model, 1.0, 0.0, 2.0) for p in g["params"]}
    assert id(model.conv1_1.weight) not in grouped and id(model.fc6.weight) in grouped


def test_backbone_frozen_training_changes_only_the_head() -> None:
    model = fcnseg.get_model("fcn8s_resnet18", num_classes=3, width=1 / 16)
    freeze(model, "backbone")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD(param_groups(model, 0.1, 0.0, 2.0), lr=0.1)
    with torch.no_grad():
        for n in model.score_layer_names():
            getattr(model, n).weight.normal_()
    model.eval()  # batch-norm statistics are buffers: keep them fixed for the comparison
    model(torch.randn(2, 3, 40, 40)).square().mean().backward()
    opt.step()
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("backbone."))
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("score_"))
    assert freeze(model, "none") == [] and all(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize(
    "spec, match", [("up_to:conv9_9", r"no trunk layer 'conv9_9'.*layers: conv1_1"), ("half", "expected 'none'")]
)
def test_bad_specs(spec: str, match: str) -> None:
    with pytest.raises(ModelError, match=match):
        freeze(fcnseg.get_model("fcn32s_vgg16", width=1 / 16), spec)


def test_config_key_reaches_training(tmp_path) -> None:
    from fcnseg.runtime.checkpoint import load_checkpoint
    from fcnseg.train.trainer import fit
    from tests.helpers import tiny

    torch.manual_seed(1337)  # fit seeds with train.seed before it builds the model
    init = fcnseg.get_model("fcn8s_resnet18", num_classes=9, width=0.0625).state_dict()
    fit(
        tiny("model.freeze=up_to:layer1", "train.max_iter=2", "train.checkpoint_every=2", "train.eval_every=2"),
        tmp_path / "r",
        progress=False,
    )
    trained, _ = load_checkpoint(tmp_path / "r" / "checkpoints" / "last.safetensors")
    state = trained.state_dict()
    assert torch.equal(state["backbone.conv1.weight"], init["backbone.conv1.weight"])
    assert not torch.equal(state["backbone.layer2.0.conv1.weight"], init["backbone.layer2.0.conv1.weight"])
