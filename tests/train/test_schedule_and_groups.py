"""LR schedules as pure functions; the reference's parameter groups."""

from __future__ import annotations

import pytest
import torch

import fcnseg
from fcnseg.config import TrainConfig
from fcnseg.errors import ConfigError
from fcnseg.train.build import param_groups
from fcnseg.train.schedule import lr_at


def test_schedules() -> None:
    assert lr_at(12345, TrainConfig(lr=1e-10)) == 1e-10
    poly = TrainConfig(lr=0.1, schedule="poly", poly_power=0.9, max_iter=100)
    assert lr_at(0, poly) == 0.1 and lr_at(100, poly) == 0.0
    assert lr_at(50, poly) == pytest.approx(0.1 * 0.5**0.9)
    step = TrainConfig(lr=1.0, schedule="step", step_size=10, step_gamma=0.5)
    assert [lr_at(s, step) for s in (0, 9, 10, 25)] == [1.0, 1.0, 0.5, 0.25]
    with pytest.raises(ConfigError, match="schedule"):
        lr_at(0, TrainConfig(schedule="cosine"))
    with pytest.raises(ConfigError, match="step_size"):
        lr_at(0, TrainConfig(schedule="step"))


def test_reference_groups_biases_double_lr_no_decay_and_no_fixed_upsampling() -> None:
    model = fcnseg.get_model("fcn8s_vgg16", width=1 / 16)
    weights, biases = param_groups(model, 1e-10, 5e-4, 2.0)
    assert weights["lr"] == 1e-10 and weights["weight_decay"] == 5e-4
    assert biases["lr"] == 2e-10 and biases["weight_decay"] == 0.0
    named = {id(p): n for n, p in model.named_parameters()}
    assert all(named[id(p)].endswith(".bias") for p in biases["params"])
    assert all(named[id(p)].endswith(".weight") for p in weights["params"])
    grouped = {named[id(p)] for g in (weights, biases) for p in g["params"]}
    assert not any(n.startswith("upscore") for n in grouped)
    assert len(grouped) == len(named)
    learned = fcnseg.get_model("fcn8s_vgg16", width=1 / 16, learn_upsampling=True)
    w, _ = param_groups(learned, 1.0, 0.0, 2.0)
    assert any(p is learned.upscore8.weight for p in w["params"])


def test_optimizer_choice_keeps_the_groups() -> None:
    from fcnseg.config import load_config
    from fcnseg.train.build import make_optimizer

    model = fcnseg.get_model("fcn32s_vgg16", width=1 / 16)
    sgd = make_optimizer(model, TrainConfig(lr=0.1, momentum=0.9))
    adamw = make_optimizer(model, TrainConfig(optimizer="adamw", lr=1e-3, weight_decay=1e-2))
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["momentum"] == 0.9
    assert isinstance(adamw, torch.optim.AdamW)
    assert [g["lr"] for g in adamw.param_groups] == [1e-3, 2e-3]
    assert [g["weight_decay"] for g in adamw.param_groups] == [1e-2, 0.0]
    x = torch.randn(1, 3, 64, 64)
    before = model.score_fr.weight.detach().clone()
    (model(x) - 1).square().mean().backward()
    adamw.step()
    assert not torch.equal(before, model.score_fr.weight)
    with pytest.raises(ConfigError, match=r"train\.optimizer"):
        load_config(None, ["train.optimizer=rmsprop"])
