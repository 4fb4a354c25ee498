"""Memory-lean mode (``pad100=False``): any size in, same size out, same weights, far less work."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import fcnseg
from fcnseg.errors import ModelError


@pytest.mark.parametrize("name", ["fcn32s_vgg16", "fcn16s_vgg16", "fcn8s_vgg16"])
def test_every_input_size_gives_a_same_size_score_map(name: str) -> None:
    model = fcnseg.get_model(name, num_classes=2, width=1 / 16, pad100=False).eval()
    with torch.no_grad():
        for h, w in [(1, 1), (2, 3), (15, 17), (31, 32), (33, 64), (65, 97), (100, 37)]:
            assert model(torch.zeros(1, 3, h, w)).shape == (1, 2, h, w)


def test_offsets_differ_from_the_reference_and_weights_are_interchangeable() -> None:
    ref = fcnseg.get_model("fcn8s_vgg16", num_classes=3, width=1 / 16)
    lean = fcnseg.get_model("fcn8s_vgg16", num_classes=3, width=1 / 16, pad100=False)
    assert ref.crop_offsets == {"score_pool4": 5, "score_pool3": 9, "score": 31}
    assert lean.crop_offsets != ref.crop_offsets
    assert lean.conv1_1.padding == (1, 1) and lean.fc6.padding == (3, 3) and ref.fc6.padding == (0, 0)
    lean.load_state_dict(ref.state_dict(), strict=True)  # same names and shapes: reference weights load


def test_lean_mode_costs_far_fewer_flops() -> None:
    x = torch.zeros(1, 3, 128, 128)
    flops = {}
    for pad100 in (True, False):
        model = fcnseg.get_model("fcn8s_vgg16", num_classes=3, width=1 / 16, pad100=pad100).eval()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
        flops[pad100] = counter.get_total_flops()
    assert flops[False] < 0.5 * flops[True], flops


def test_pad100_survives_a_checkpoint_round_trip(tmp_path) -> None:
    from fcnseg.runtime.checkpoint import CheckpointInfo, load_checkpoint, model_kwargs, save_checkpoint

    model = fcnseg.get_model("fcn16s_vgg16", num_classes=3, width=1 / 16, pad100=False)
    info = CheckpointInfo(arch="fcn16s_vgg16", model_kwargs=model_kwargs(model))
    path = save_checkpoint(tmp_path / "lean", model, info)
    loaded, _ = load_checkpoint(path)
    assert loaded.pad100 is False and loaded.fc6.padding == (3, 3)


@pytest.mark.parametrize("name", ["fcn8s_resnet18", "fcn32s_alexnet", "fcn32s_googlenet"])
def test_nets_without_the_option_say_so(name: str) -> None:
    with pytest.raises(ModelError, match="pad100=False"):
        fcnseg.get_model(name, num_classes=2, width=0.125, pad100=False)
