"""The engine cache's exported graph is checked by the runtime that runs it: its probe compares the graph's
full-precision output with PyTorch's reference output, kept beside the graph at export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fcnseg.inference import build_child
from fcnseg.runtime.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small FCN-8s whose score layers are not zero (zero scores would make any graph agree)."""
    import torch

    import fcnseg
    from fcnseg.runtime.checkpoint import CheckpointInfo, model_kwargs, save_checkpoint

    torch.manual_seed(0)
    model = fcnseg.get_model("fcn8s_vgg16", num_classes=4, width=1 / 16)
    with torch.no_grad():
        for name in model.score_layer_names():
            getattr(model, name).weight.normal_(0, 0.1)
    info = CheckpointInfo(arch=model.arch, model_kwargs=model_kwargs(model))
    return save_checkpoint(tmp_path_factory.mktemp("ck") / "m", model, info)


@pytest.fixture(scope="module")
def exported(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    model, _ = load_checkpoint(checkpoint)
    out = tmp_path_factory.mktemp("graph")
    spec = {"arch": model.arch, "kwargs": dict(model.build_args), "file": str(checkpoint), "out": str(out)}
    assert build_child.export(spec) == {"main": "model.onnx"}
    return out


def _spec(folder: Path, engine: str, reference: Path) -> dict[str, object]:
    spec = {"engine": engine, "graph": str(folder / "model.onnx"), "shape": [1, 3, 64, 64], "reference": str(reference)}
    return {**spec, "hint": "bf16"} if engine == "openvino-bf16" else spec


def test_export_keeps_pytorchs_output_on_the_reference_input(exported: Path, checkpoint: Path) -> None:
    import torch

    model, _ = load_checkpoint(checkpoint)
    with np.load(exported / "reference.npz") as ref:
        x, out = ref["x"], ref["out0"]
    assert x.shape == (2, 3, *build_child.REFERENCE_SIZE)
    with torch.inference_mode():
        expected = model.eval()(torch.from_numpy(x)).numpy()
    assert out.max() - out.min() > 1e-3  # scores that differ from pixel to pixel: a check that can fail
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("engine", ["onnxruntime", "openvino", "openvino-bf16"])
def test_the_probe_passes_a_faithful_graph_and_refuses_one_that_differs_from_pytorch(
    exported: Path, engine: str, tmp_path: Path
) -> None:
    pytest.importorskip("openvino" if engine.startswith("openvino") else "onnxruntime")
    good = exported / "reference.npz"
    assert build_child.probe(_spec(exported, engine, good)) == {}
    with np.load(good) as ref:
        x, out = ref["x"], ref["out0"]
    wrong = tmp_path / "reference.npz"
    np.savez(wrong, x=x, out0=out + 0.01 * (out.max() - out.min()))  # 1 % of the score range off
    with pytest.raises(ValueError, match="differs from PyTorch"):
        build_child.probe(_spec(exported, engine, wrong))
