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
        ({"preprocessing": {"bgr": True, "scale": 1.0, "mean": [1, 2]}}, "preprocessing.mean has 2 values"),
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
