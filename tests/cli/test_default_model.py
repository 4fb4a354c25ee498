"""Every command that takes a model falls back, as ``serve`` does, to the quick start's model when none is named;
``fcnseg list`` says what each registered net is."""

from __future__ import annotations

import shutil

import numpy as np
from PIL import Image

from fcnseg.cli.main import main
from fcnseg.models import list_models


def test_predict_without_a_model_uses_the_quick_starts_or_says_how_to_get_it(
    tmp_path, checkpoint, capsys, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Image.fromarray(np.zeros((20, 24, 3), np.uint8)).save(tmp_path / "photo.png")
    assert main(["predict", "photo.png", "--out", "masks"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "run `fcnseg demo` first" in err and not (tmp_path / "masks").exists()
    demo = tmp_path / "runs" / "demo" / "checkpoints"
    demo.mkdir(parents=True)
    shutil.copy(checkpoint, demo / "best.safetensors")
    assert main(["predict", "photo.png", "--out", "masks"]) == 0
    assert (tmp_path / "masks" / "photo.png").is_file()
    assert (
        "no --checkpoint given: the quick start's model runs/demo/checkpoints/best.safetensors"
        in capsys.readouterr().err
    )


def test_list_says_what_each_net_is(capsys) -> None:
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list_models()
    assert all(len(line.split(None, 1)) == 2 for line in lines)  # a name, then what it is
    assert any("reference-exact" in line for line in lines if line.startswith("fcn8s_vgg16 "))
