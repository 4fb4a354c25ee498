"""open_segmenter: what fcnseg predict and its Ray workers segment with, from a checkpoint or bare weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

import fcnseg
from fcnseg.errors import ConfigError
from fcnseg.inference.source import open_segmenter, options_of
from fcnseg.runtime.calibration import calibration_images
from fcnseg.runtime.checkpoint import CheckpointInfo, model_kwargs, save_checkpoint


@pytest.fixture
def net() -> torch.nn.Module:
    torch.manual_seed(0)
    return fcnseg.get_model("fcn32s_resnet18", num_classes=3).eval()


def test_a_checkpoint_and_its_bare_weights_segment_alike(tmp_path, net) -> None:
    info = CheckpointInfo(arch=net.arch, model_kwargs=model_kwargs(net), classes=["bg", "a", "b"],
                          preprocessing=fcnseg.preprocessing.CAFFE_VOC.to_dict())  # fmt: skip
    ckpt = save_checkpoint(tmp_path / "m", net, info)
    bare = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(bare))
    image = np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    a, classes = open_segmenter(ckpt, engine="torch")
    b, numbered = open_segmenter(model="fcn32s_resnet18", weights=bare, engine="torch")
    assert classes == ["bg", "a", "b"] and len(numbered) == 3
    assert (a.predict(image) == b.predict(image)).all() and a.engine.source == ckpt


def test_calibration_comes_from_a_folder_and_options_follow_the_command_line(tmp_path, net) -> None:
    for i in range(3):
        Image.fromarray(np.full((20, 24, 3), 40 * i, np.uint8)).save(tmp_path / f"{i}.png")
    info = CheckpointInfo(arch=net.arch, model_kwargs=model_kwargs(net))
    images = calibration_images(info, tmp_path, 2)
    assert len(images) == 2 and images[0].shape == (3, 20, 24)
    with pytest.raises(ConfigError, match="no images"):
        calibration_images(info, tmp_path / "empty-does-not-exist", 2)

    class Args:
        checkpoint, int8, dtype = "c.safetensors", True, "bf16"

    opts = options_of(Args())
    assert opts["engine"] == "onnxruntime-int8" and opts["dtype"] == "bf16" and opts["calibration_count"] == 32
    with pytest.raises(ConfigError, match="dtype 'fp8'"):
        open_segmenter("c.safetensors", dtype="fp8")
