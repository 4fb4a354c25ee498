"""ONNX export (dynamic sizes, checked with onnxruntime), torchfcn conversion, --model/--weights."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

import fcnseg
from fcnseg.cli.main import main
from fcnseg.export import export_onnx
from fcnseg.runtime.checkpoint import CheckpointInfo, model_kwargs, save_checkpoint

ort = pytest.importorskip("onnxruntime")


def _random(model):
    with torch.no_grad():
        for n in model.score_layer_names():
            getattr(model, n).weight.normal_()
    return model.eval()


@pytest.mark.parametrize(
    "name", ["fcn8s_vgg16", "fcn32s_alexnet", pytest.param("fcn8s_resnet18", marks=pytest.mark.slow)]
)
def test_onnx_matches_pytorch_at_three_sizes_including_odd(tmp_path, name: str) -> None:
    model = _random(fcnseg.get_model(name, num_classes=5, width=1 / 16))
    report = export_onnx(model, tmp_path / "m.onnx", check_sizes=((64, 64), (97, 53), (31, 45)))
    assert report["max_abs_diff"] <= 1e-3 * report["score_range"]
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    x = (
        np.random.default_rng(0).standard_normal((3, 3, 41, 77)).astype(np.float32)
    )  # a size and batch not checked above
    (out,) = session.run(None, {"image": x})
    with torch.inference_mode():
        ref = model(torch.from_numpy(x)).numpy()
    assert out.shape == (3, 5, 41, 77) and np.abs(out - ref).max() <= 1e-3 * (ref.max() - ref.min())


def test_multi_head_export_has_one_output_per_head(tmp_path) -> None:
    model = _random(fcnseg.get_model("fcn16s_vgg16", heads={"sem": 33, "geo": 3}, width=1 / 16))
    export_onnx(model, tmp_path / "sf.onnx", check_sizes=((40, 40),))
    session = ort.InferenceSession(str(tmp_path / "sf.onnx"), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["scores_sem", "scores_geo"]


def _checkpoint(tmp_path):
    model = _random(fcnseg.get_model("fcn8s_vgg16", num_classes=21, width=1 / 16))
    info = CheckpointInfo(arch="fcn8s_vgg16", model_kwargs=model_kwargs(model), classes=[str(i) for i in range(21)])
    return model, save_checkpoint(tmp_path / "ck", model, info)


def test_cli_export(tmp_path, capsys) -> None:
    _, ckpt = _checkpoint(tmp_path)
    assert main(["export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "m.onnx")]) == 0
    assert "onnxruntime vs PyTorch" in capsys.readouterr().out and (tmp_path / "m.onnx").is_file()


@pytest.mark.slow
def test_convert_torchfcn_then_predict_with_the_checkpoint(tmp_path, capsys) -> None:
    """A torchfcn-format file (same keys as torchfcn writes) → fcnseg checkpoint with the same scores."""
    model = _random(fcnseg.get_model("fcn16s_vgg16"))
    torch.save(
        {"epoch": 3, "iteration": 100, "arch": "FCN16s", "model_state_dict": model.state_dict(), "best_mean_iu": 0.6},
        tmp_path / "model_best.pth.tar",
    )
    out = tmp_path / "w.safetensors"
    assert main(["convert", "torchfcn", str(tmp_path / "model_best.pth.tar"), "--out", str(out)]) == 0
    assert "fcn16s_vgg16, 21 classes" in capsys.readouterr().out
    converted, info = fcnseg.load_checkpoint(out)
    assert info.arch == "fcn16s_vgg16" and info.classes[15] == "person" and info.preprocessing["bgr"] is True
    x = torch.randn(1, 3, 50, 60)
    with torch.no_grad():
        assert torch.equal(converted.eval()(x), model(x))


def test_convert_refuses_a_pickle_that_runs_code(tmp_path, capsys) -> None:
    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    (tmp_path / "evil.pth").write_bytes(pickle.dumps({"model_state_dict": Evil()}))
    assert main(["convert", "torchfcn", str(tmp_path / "evil.pth"), "--out", str(tmp_path / "w.safetensors")]) == 2
    assert "cannot load safely" in capsys.readouterr().err
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "w.safetensors").exists()


def test_predict_takes_model_and_weights(tmp_path, capsys, monkeypatch) -> None:
    from PIL import Image

    monkeypatch.chdir(tmp_path)  # no quick-start model here (a clone where `fcnseg demo` ran has one)
    from safetensors.torch import save_file

    from fcnseg.preprocessing import IMAGENET

    model = _random(fcnseg.get_model("fcn8s_resnet18", num_classes=4))  # full width: bare weights carry no width
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, tmp_path / "bare.safetensors")
    image = np.random.default_rng(1).integers(0, 256, (33, 47, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "a.png")
    args = ["--model", "fcn8s_resnet18", "--weights", str(tmp_path / "bare.safetensors"), "--preprocessing", "imagenet"]
    assert main(["predict", *args, str(tmp_path / "a.png"), "--out", str(tmp_path / "p")]) == 0
    expected = fcnseg.Segmenter(model, preprocessing=IMAGENET).predict(image)
    np.testing.assert_array_equal(
        np.asarray(Image.open(tmp_path / "p" / "a.png")), expected
    )  # classes read from the weights

    _, tiny = _checkpoint(tmp_path)
    assert (
        main(
            [
                "predict",
                "--model",
                "fcn8s_vgg16",
                "--weights",
                str(tiny),
                str(tmp_path / "a.png"),
                "--out",
                str(tmp_path / "q"),
            ]
        )
        == 2
    )
    assert "does not fit fcn8s_vgg16" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "a.png"), "--out", str(tmp_path / "p")]) == 2
    assert "pass --checkpoint CKPT.safetensors" in capsys.readouterr().err


def _onnx_ops(path) -> set[str]:
    import onnx

    graph = onnx.load(str(path)).graph
    return {n.op_type for n in graph.node}


@pytest.mark.parametrize("mode", ["dense", "grouped", pytest.param("resize", marks=pytest.mark.slow)])
def test_deployment_upsampling_forms_are_exact_in_onnx(tmp_path, mode: str) -> None:
    """Each form is checked by onnxruntime against the model as built; resize leaves no ConvTranspose."""
    model = _random(fcnseg.get_model("fcn8s_vgg16", num_classes=5, width=1 / 16))
    report = export_onnx(model, tmp_path / "m.onnx", check_sizes=((64, 64), (97, 53)), upsampling=mode)
    assert report["max_abs_diff"] <= 1e-4 * report["score_range"]
    ops = _onnx_ops(tmp_path / "m.onnx")
    assert ("ConvTranspose" in ops) == (mode != "resize") and ("Resize" in ops) == (mode == "resize")
    assert all(m.mode == "auto" for m in model.modules() if isinstance(m, fcnseg.models.BilinearUpsample))


def test_resize_equals_the_deconvolution_everywhere_not_only_inside_the_crop() -> None:
    from fcnseg.models.layers import BilinearUpsample

    for k, s in ((4, 2), (16, 8), (64, 32)):
        up = BilinearUpsample(3, k, s)
        x = torch.randn(2, 3, 5, 7)
        ref = up(x)
        up.mode = "resize"
        torch.testing.assert_close(up(x), ref, atol=1e-5, rtol=1e-5)


def test_resize_falls_back_to_grouped_where_not_exact_and_refuses_learned_kernels(tmp_path) -> None:
    from fcnseg.errors import ExportError
    from fcnseg.models import set_upsampling

    resnet = _random(fcnseg.get_model("fcn8s_resnet18", num_classes=3, width=1 / 16))
    assert set_upsampling(resnet, "resize") == []  # ResNet's kernels (3/2, 15/8) are odd: all stay grouped
    assert {m.mode for m in resnet.modules() if isinstance(m, fcnseg.models.BilinearUpsample)} == {"grouped"}
    vgg = fcnseg.get_model("fcn8s_vgg16", num_classes=3, width=1 / 16)
    assert set_upsampling(vgg, "resize") == ["upscore2", "upscore_pool4", "upscore8"]
    learned = _random(fcnseg.get_model("fcn32s_vgg16", num_classes=3, width=1 / 16, learn_upsampling=True))
    with pytest.raises(ExportError, match="learned"):
        export_onnx(learned, tmp_path / "x.onnx", upsampling="resize")
    assert not (tmp_path / "x.onnx").exists()
