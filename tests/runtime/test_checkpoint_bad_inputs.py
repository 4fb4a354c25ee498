"""Untrusted checkpoints: metadata checked field by field before anything is allocated, NaN weights and pickles refused."""

from __future__ import annotations

import pytest

import fcnseg
from fcnseg.cli.main import main
from fcnseg.runtime.checkpoint import CheckpointInfo, model_kwargs, save_checkpoint
from tests.badinput import forge, no_traceback


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"model_kwargs__num_classes": 2_000_000}, "model_kwargs.num_classes: expected null or an integer 1..100000"),
        ({"model_kwargs__num_classes": 90_000, "classes": []}, "weights do not fit the fcn8s_vgg16 its metadata"),
        ({"model_kwargs__width": 1000.0}, "model_kwargs.width: expected a number in (0, 16]"),
        ({"model_kwargs__num_classes": "4"}, "model_kwargs.num_classes: expected null or an integer"),
        ({"model_kwargs__heads": [1, 2]}, "model_kwargs.heads: expected null or a mapping"),
        ({"model_kwargs__evil": 1}, "model_kwargs.evil: unknown build argument"),
        ({"classes": ["bg"]}, "classes lists 1 names for a 4-class model"),
        ({"classes": "bg,a,b,c"}, "metadata classes: expected a list of class names"),
        ({"preprocessing": {"bgr": True, "scale": 1.0, "mean": [1, 2, 3], "std": [1, 0, 1]}}, "preprocessing.std"),
        ({"preprocessing": {"bgr": True, "scale": 1.0, "mean": [1, 2]}}, "preprocessing.mean: expected 3 numbers"),
        # third pass: values that passed and then gave NaN input, or failed at the first image
        ({"preprocessing": {"bgr": True, "scale": 1.0, "mean": [1, 2, 3], "std": [1e-320, 1, 1]}}, "std: expected 3"),
        ({"preprocessing": {"bgr": True, "scale": 1.0, "mean": [1, 2], "std": [1, 1]}}, "mean: expected 3 numbers"),
        ({"preprocessing": {"bgr": True, "scale": 1.0, "mean": [1] * 5, "std": [1] * 5}}, "mean: expected 3 numbers"),
        ({"preprocessing": {"bgr": True, "scale": 1.0, "mean": [7], "std": [1]}}, "mean: expected 3 numbers"),
        ({"preprocessing": {"bgr": True, "scale": 1e-300, "mean": [1, 2, 3]}}, "preprocessing.scale: expected a"),
        ({"preprocessing": {"bgr": True, "scale": 1.0, "mean": [1e300, 2, 3]}}, "mean: expected 3 numbers"),
        ({"step": -5}, "metadata step: expected a non-negative integer"),
        ({"arch": 7}, "metadata arch: expected a model name"),
    ],
)
def test_malformed_checkpoint_metadata_is_one_line_before_any_allocation(
    tmp_path, checkpoint, capsys, monkeypatch, changes, message
) -> None:
    import fcnseg.runtime.checkpoint as checkpoint_mod

    forged = forge(tmp_path / "forged.safetensors", checkpoint, **changes)
    monkeypatch.setattr(checkpoint_mod, "get_model", lambda *a, **k: pytest.fail("the model was built for real"))
    code = main(["predict", "--checkpoint", str(forged), str(tmp_path), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    no_traceback(err, code)
    assert code == 2 and message in err, err  # refused from the header: 2 M classes were never allocated


def test_nan_weights_are_refused(tmp_path) -> None:
    import torch

    model = fcnseg.get_model("fcn8s_vgg16", num_classes=3, width=1 / 16)
    with torch.no_grad():
        model.score_fr.weight[0, 0] = float("nan")
    info = CheckpointInfo(arch=model.arch, model_kwargs=model_kwargs(model))
    path = save_checkpoint(tmp_path / "nan", model, info)
    with pytest.raises(fcnseg.errors.CheckpointError, match=r"score_fr\.weight holds NaN or infinite values"):
        fcnseg.runtime.checkpoint.load_checkpoint(path)


def test_evil_pickle_refusal_is_one_line(tmp_path, capsys) -> None:
    import os
    import pickle

    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"w": Evil()}))
    code = main(["predict", "--model", "fcn8s_vgg16", "--weights", str(tmp_path / "evil.pt"), str(tmp_path)])
    err = capsys.readouterr().err
    no_traceback(err, code)
    assert code == 2 and "cannot load weights safely" in err and len(err.strip().splitlines()) == 1
    assert not marker.exists()


def test_an_rgbd_checkpoint_is_refused_before_any_image(tmp_path, capsys) -> None:
    """predict feeds RGB: a 4-channel (RGB-D) net failed at every image, exit 1; now refused at the start."""
    import numpy as np
    from PIL import Image

    model = fcnseg.get_model("fcn32s_vgg16", num_classes=3, width=1 / 16, in_channels=4)
    ckpt = save_checkpoint(tmp_path / "rgbd", model, CheckpointInfo(arch=model.arch, model_kwargs=model_kwargs(model)))
    Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(tmp_path / "a.png")
    code = main(["predict", "--checkpoint", str(ckpt), str(tmp_path / "a.png"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    no_traceback(err, code)
    assert code == 2 and "the model takes 4 input channels" in err, err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").glob("*.png"))


def test_a_scalar_score_layer_in_a_pth_is_one_line(tmp_path, capsys) -> None:
    import torch

    model = fcnseg.get_model("fcn8s_vgg16", num_classes=3, width=1 / 16)
    state = dict(model.state_dict())
    state["score_fr.weight"] = torch.tensor(1.0)
    torch.save(state, tmp_path / "w.pth")
    code = main(["predict", "--model", "fcn8s_vgg16", "--weights", str(tmp_path / "w.pth"), str(tmp_path)])
    err = capsys.readouterr().err
    no_traceback(err, code)
    assert code == 2 and "w.pth: score_fr.weight has shape ()" in err, err


def test_a_device_that_is_not_here_is_one_line(tmp_path, checkpoint, capsys) -> None:
    code = main(["predict", "--checkpoint", str(checkpoint), str(tmp_path), "--device", "mps"])
    err = capsys.readouterr().err
    no_traceback(err, code)
    assert code == 2 and "device 'mps'" in err, err
