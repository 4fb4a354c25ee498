"""get_model records how it built a net (model.build_args); checkpoints and `fcnseg info` read it from there."""

from __future__ import annotations

import pytest
import torch

import fcnseg
from fcnseg.errors import CheckpointError
from fcnseg.runtime.checkpoint import CheckpointInfo, load_checkpoint, model_kwargs, save_checkpoint


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_classes": 5, "width": 1 / 16, "pad100": False},
        {"heads": {"sem": 4, "geo": 3}, "width": 1 / 16},
        {"streams": {"color": 3, "hha": 3}, "num_classes": 5, "width": 1 / 16, "learn_upsampling": True},
    ],
)
def test_build_args_rebuild_the_same_net(kwargs) -> None:
    model = fcnseg.get_model("fcn16s_vgg16", **kwargs)
    assert {k: v for k, v in model.build_args.items() if k in kwargs} == kwargs
    again = fcnseg.get_model(model.arch, **model.build_args)
    assert {k: v.shape for k, v in again.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}
    assert model_kwargs(model) == model.build_args  # what a checkpoint records


def test_a_checkpoint_keeps_the_width_it_was_built_with(tmp_path, capsys) -> None:
    from fcnseg.cli.main import main

    model = fcnseg.get_model("fcn8s_resnet18", num_classes=3, width=0.125)
    path = save_checkpoint(tmp_path / "m", model, CheckpointInfo(arch=model.arch, model_kwargs=model_kwargs(model)))
    loaded, info = load_checkpoint(path)
    assert info.model_kwargs["width"] == 0.125 and loaded.build_args == model.build_args
    assert main(["info", str(path)]) == 0
    assert "width=0.125" in capsys.readouterr().out


def test_a_net_not_built_by_get_model_cannot_be_described() -> None:
    with pytest.raises(CheckpointError, match=r"build it with fcnseg\.get_model"):
        model_kwargs(torch.nn.Conv2d(3, 3, 1))
