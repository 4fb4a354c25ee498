"""Equivalence with the popular PyTorch port, torchfcn (its real model code, fetched by .ci/run).

torchfcn uses the reference Caffe names and shapes, so its state dicts load into fcnseg's VGG16 nets
with ``strict=True``; this test builds torchfcn's own FCN32s/16s/8s/8sAtOnce from its released source
(the sdist from PyPI, not vendored) and checks both implementations give the same scores.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from pathlib import Path

import pytest
import torch

import fcnseg
from fcnseg.errors import CheckpointError
from fcnseg.weights import convert_torchfcn

REPO = Path(__file__).resolve().parents[2]


def _torchfcn_models() -> types.ModuleType:
    root = Path(os.environ.get("FCNSEG_TORCHFCN_SRC", REPO / ".cache" / "torchfcn"))
    hits = sorted(root.glob("**/torchfcn/models/__init__.py"))
    if not hits:
        pytest.skip(f"torchfcn source not found under {root} (.ci/run fetches it with 'pip download torchfcn')")
    sys.modules.setdefault("fcn", types.ModuleType("fcn"))  # used only by torchfcn's download helpers
    spec = importlib.util.spec_from_file_location(
        "_torchfcn_models", hits[0], submodule_search_locations=[str(hits[0].parent)]
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["_torchfcn_models"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.parametrize(
    "cls, name",
    [
        ("FCN32s", "fcn32s_vgg16"),
        ("FCN16s", "fcn16s_vgg16"),
        ("FCN8s", "fcn8s_vgg16"),
        ("FCN8sAtOnce", "fcn8s_atonce_vgg16"),
    ],
)
def test_torchfcn_state_dict_loads_strict_and_gives_the_same_scores(cls: str, name: str) -> None:
    ref = getattr(_torchfcn_models(), cls)(n_class=21).eval()
    with torch.no_grad():
        for key, value in ref.state_dict().items():
            if "upscore" not in key:
                value.normal_(0, 0.01)
    ours = fcnseg.get_model(name).eval()
    ours.load_state_dict(convert_torchfcn({"model_state_dict": ref.state_dict(), "iteration": 3}), strict=True)
    x = torch.randn(1, 3, 61, 47) * 50
    with torch.no_grad():
        a, b = ref(x), ours(x)
    assert a.shape == b.shape == (1, 21, 61, 47)
    torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6 * float(a.abs().max()))


def test_convert_torchfcn_unwraps_and_strips_module_prefix() -> None:
    model = fcnseg.get_model("fcn32s_vgg16", width=1 / 16)
    wrapped = {"model_state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}, "epoch": 1}
    out = convert_torchfcn(wrapped)
    assert out.keys() == model.state_dict().keys()
    model.load_state_dict(out, strict=True)


def test_convert_torchfcn_rejects_other_files() -> None:
    with pytest.raises(CheckpointError, match="not a torchfcn FCN"):
        convert_torchfcn({"layer.weight": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="not a tensor"):
        convert_torchfcn({"conv1_1.weight": "x"})
