"""One way to open a Segmenter: a model, a checkpoint, a registry name with weights, or a ModelSpec — the same
classes and preprocessing whichever way; typed option records cross from the command line."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

import fcnseg
from fcnseg.errors import ConfigError
from fcnseg.inference import Segmenter
from fcnseg.inference.predictor import SegmenterOptions
from fcnseg.runtime.calibration import calibration_images
from fcnseg.runtime.checkpoint import CheckpointInfo, model_kwargs, save_checkpoint
from fcnseg.runtime.model_source import ModelSpec


@pytest.fixture
def net() -> torch.nn.Module:
    torch.manual_seed(0)
    return fcnseg.get_model("fcn32s_resnet18", num_classes=3).eval()


def test_a_checkpoint_and_its_bare_weights_segment_alike(tmp_path, net) -> None:
    info = CheckpointInfo(
        arch=net.arch,
        model_kwargs=model_kwargs(net),
        classes=["bg", "a", "b"],
        preprocessing=fcnseg.preprocessing.CAFFE_VOC.to_dict(),
    )
    ckpt = save_checkpoint(tmp_path / "m", net, info)
    bare = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(bare))
    image = np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    a = Segmenter(ckpt, engine="torch", device="cpu")
    b = Segmenter("fcn32s_resnet18", weights=bare, engine="torch", device="cpu")
    c = Segmenter(ModelSpec(model="fcn32s_resnet18", weights=str(bare)), engine="torch", device="cpu")
    assert a.classes == ["bg", "a", "b"] and b.classes == c.classes == ["class_0", "class_1", "class_2"]
    assert a.info is not None and a.info.classes == a.classes  # set by the constructor, never patched afterwards
    assert (a.predict(image) == b.predict(image)).all() and (b.predict(image) == c.predict(image)).all()
    assert a.engine.source == ckpt and b.engine.source == bare


def test_options_records_open_the_same_segmenter(tmp_path, net) -> None:
    ckpt = save_checkpoint(tmp_path / "m", net, CheckpointInfo(arch=net.arch, model_kwargs=model_kwargs(net)))
    options = SegmenterOptions(device="cpu", engine="torch", dtype="bf16")
    seg = Segmenter(ModelSpec(checkpoint=str(ckpt)), **asdict(options))
    assert seg.dtype is torch.bfloat16 and seg.device == torch.device("cpu") and seg.engine.engine == "torch"
    with pytest.raises(ConfigError, match="dtype 'fp8'"):
        Segmenter(net, dtype="fp8")


def test_the_default_device_is_auto_as_on_the_command_line(net) -> None:
    seg = Segmenter(net)
    assert seg.device.type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_calibration_comes_from_a_folder(tmp_path, net) -> None:
    for i in range(3):
        Image.fromarray(np.full((20, 24, 3), 40 * i, np.uint8)).save(tmp_path / f"{i}.png")
    info = CheckpointInfo(arch=net.arch, model_kwargs=model_kwargs(net))
    images = calibration_images(info, tmp_path, 2)
    assert len(images) == 2 and images[0].shape == (3, 20, 24)
    with pytest.raises(ConfigError, match="no images"):
        calibration_images(info, tmp_path / "empty-does-not-exist", 2)
    seg = Segmenter(net, calibration=tmp_path, calibration_count=3, device="cpu")
    assert len(seg.engine.calibration()) == 3  # a bare model calibrates on the folder with its own preprocessing


def test_a_bare_models_preprocessing_follows_its_trunks_weights() -> None:
    """torchvision's trunks expect ImageNet-normalised RGB, the reference trunks the Caffe convention; a reference
    trunk given torchvision weights expects what those weights were trained on."""
    import torchvision

    from fcnseg.preprocessing import CAFFE_VOC, IMAGENET

    for name in ("fcn8s_resnet18", "fcn8s_mobilenet_v3_large", "fcn32s_alexnet_tv"):
        assert Segmenter(fcnseg.get_model(name, num_classes=3, width=1 / 8)).preprocessing == IMAGENET, name
    for name in ("fcn8s_vgg16", "fcn32s_alexnet", "fcn8s_googlenet"):
        assert Segmenter(fcnseg.get_model(name, num_classes=3, width=1 / 8)).preprocessing == CAFFE_VOC, name
    classifier = torchvision.models.vgg16(weights=None)  # what VGG16_Weights would load, without the download
    net = fcnseg.get_model("fcn32s_vgg16", num_classes=3, backbone_weights=classifier)
    assert Segmenter(net).preprocessing == IMAGENET
    assert Segmenter(net, preprocessing="caffe_voc").preprocessing == CAFFE_VOC  # asked for: asked for


def test_a_synthetic_shapes_model_says_once_what_it_knows(tmp_path, caplog, capsys) -> None:
    """The demo's model paints shapes on photographs: Segmenter and predict say so, once, before they segment."""
    import logging
    import shutil

    from fcnseg.cli.main import main
    from fcnseg.train import fit
    from tests.helpers import tiny

    fit(tiny("train.max_iter=1", "train.eval_every=1", "train.checkpoint_every=1"), tmp_path / "run", progress=False)
    ckpt = tmp_path / "run" / "checkpoints" / "last.safetensors"
    with caplog.at_level(logging.WARNING, logger="fcnseg"):
        Segmenter(ckpt, device="cpu", engine="torch")
        Segmenter(ckpt, device="cpu", engine="torch")  # the same model again in this process: said once
    assert [r.getMessage() for r in caplog.records].count(fcnseg.runtime.domain.SYNTHETIC_NOTE) == 1
    capsys.readouterr()  # an earlier CLI test in this process may have left fcnseg's stderr handler on the logger
    Image.fromarray(np.zeros((20, 24, 3), np.uint8)).save(tmp_path / "photo.png")
    other = shutil.copy(ckpt, tmp_path / "copy.safetensors")  # another model file: a run of its own
    assert main(["predict", "--checkpoint", str(other), str(tmp_path / "photo.png"), "--out", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    assert err.count("trained on fcnseg's synthetic shapes only") == 1
    bare = Segmenter(fcnseg.get_model("fcn8s_resnet18", num_classes=3, width=1 / 16))  # nothing recorded: silent
    assert bare.info is None
