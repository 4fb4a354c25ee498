"""int8 CPU path: onnxruntime static quantization, exposed as ``export --int8`` and ``predict --int8``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("onnxruntime")

import fcnseg
from fcnseg.cli.main import main
from fcnseg.data import SyntheticShapes
from fcnseg.data.transforms import eval_transforms
from fcnseg.export.int8 import OnnxModule, quantize_int8
from fcnseg.preprocessing import IMAGENET
from fcnseg.runtime.checkpoint import CheckpointInfo, model_kwargs, save_checkpoint


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    model = fcnseg.get_model("fcn8s_vgg16", num_classes=9, width=1 / 16)
    with torch.no_grad():
        for n in model.score_layer_names():
            getattr(model, n).weight.normal_(0, 0.5)
    return model.eval()


def test_int8_model_agrees_with_fp32_and_is_four_times_smaller(tmp_path) -> None:
    model = _model()
    ds = SyntheticShapes(24, 48, "train", transforms=eval_transforms(IMAGENET))
    path = quantize_int8(model, tmp_path / "m.int8.onnx", (ds[i][0] for i in range(16)))
    from fcnseg.export import export_onnx

    export_onnx(model, tmp_path / "m.onnx", check_sizes=((32, 32),))
    assert path.stat().st_size < 0.35 * (tmp_path / "m.onnx").stat().st_size
    int8 = OnnxModule(path, model)
    held_out = SyntheticShapes(6, 48, "val", transforms=eval_transforms(IMAGENET))
    agree = []
    for i in range(len(held_out)):
        x = held_out[i][0].unsqueeze(0)
        with torch.inference_mode():
            ref = model(x)
        out = int8(x)
        assert out.shape == ref.shape
        agree.append(float((out.argmax(1) == ref.argmax(1)).float().mean()))
    assert np.mean(agree) > 0.9, agree


@pytest.mark.slow
def test_cli_export_int8_and_predict_int8(tmp_path, capsys, fcnseg_home) -> None:
    model = _model()
    info = CheckpointInfo(
        arch="fcn8s_vgg16",
        model_kwargs=model_kwargs(model),
        classes=[f"c{i}" for i in range(9)],
        preprocessing=IMAGENET.to_dict(),
    )
    ckpt = save_checkpoint(tmp_path / "ck", model, info)
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(4):
        image, _, _ = SyntheticShapes(4, 40, "train").generate(i)
        Image.fromarray(image).save(photos / f"p{i}.png")
    out = tmp_path / "q.onnx"
    args = ["export", "--checkpoint", str(ckpt), "--int8", "--calibration", str(photos), "--out", str(out)]
    assert main(args) == 0 and out.is_file()
    assert (
        main(
            [
                "predict",
                "--checkpoint",
                str(ckpt),
                "--int8",
                "--calibration",
                str(photos),
                str(photos),
                "--out",
                str(tmp_path / "pred"),
            ]
        )
        == 0
    )
    assert len(list((tmp_path / "pred").glob("p*.png"))) >= 4
    assert sorted(p.name for p in tmp_path.glob("ck*")) == ["ck.safetensors"]  # nothing beside the checkpoint
    assert list(fcnseg_home.glob("engines/*/onnx-int8/record.json"))  # the int8 graph lives in FCNSEG_HOME
    empty = tmp_path / "empty"
    empty.mkdir()
    args = ["export", "--checkpoint", str(ckpt), "--int8", "--calibration", str(empty), "--out", str(tmp_path / "x")]
    assert main(args) == 2
    assert "no images to calibrate on" in capsys.readouterr().err and not (tmp_path / "x").exists()


@pytest.mark.slow  # ~10 s on 2 cores: the default suite stays under 6 minutes
def test_predict_with_the_onnxruntime_engine_matches_torch(tmp_path, fcnseg_home) -> None:
    model = _model()
    info = CheckpointInfo(
        arch="fcn8s_vgg16",
        model_kwargs=model_kwargs(model),
        classes=[f"c{i}" for i in range(9)],
        preprocessing=IMAGENET.to_dict(),
    )
    ckpt = save_checkpoint(tmp_path / "ck", model, info)
    image, _, _ = SyntheticShapes(1, 56, "val").generate(0)
    Image.fromarray(image).save(tmp_path / "a.png")
    for engine in ("torch", "onnxruntime"):
        args = ["predict", "--checkpoint", str(ckpt), "--engine", engine, str(tmp_path / "a.png"), "--out"]
        assert main([*args, str(tmp_path / engine)]) == 0
    assert not (tmp_path / "ck.onnx").exists() and list(fcnseg_home.glob("engines/*/onnx/model.onnx"))
    a = np.asarray(Image.open(tmp_path / "torch" / "a.png"))
    b = np.asarray(Image.open(tmp_path / "onnxruntime" / "a.png"))
    assert (a == b).mean() > 0.999


QUIET_CHILD = """
import logging, sys, torch, fcnseg
from fcnseg.export.int8 import quantize_int8
torch.manual_seed(0)
net = fcnseg.get_model("fcn8s_resnet18", num_classes=3, width=1 / 16).eval()
quantize_int8(net, sys.argv[1], [torch.rand(3, 32, 32) for _ in range(2)])
print("root handlers:", len(logging.getLogger().handlers))
"""


@pytest.mark.slow  # ~10 s on 2 cores: the default suite stays under 6 minutes
def test_quantizing_prints_nothing_of_onnxruntime_s_and_leaves_the_root_logger_alone(tmp_path) -> None:
    """onnxruntime's ``logging.warning`` advice printed on every quantization and, in a process whose root logger
    had no handler, installed one for good (so other libraries' records would print from then on)."""
    import subprocess
    import sys
    from pathlib import Path

    src = str(Path(fcnseg.__file__).resolve().parents[1])
    child = subprocess.run(
        [sys.executable, "-c", QUIET_CHILD, str(tmp_path / "m.int8.onnx")],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": src, "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
        timeout=300,
    )
    assert child.returncode == 0, child.stderr[-2000:]
    assert "Please consider" not in child.stderr and "WARNING" not in child.stderr, child.stderr
    assert "root handlers: 0" in child.stdout and (tmp_path / "m.int8.onnx").is_file()
