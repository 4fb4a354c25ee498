"""configs/cityscapes-fcn8s.yaml and configs/ade20k-fcn8s.yaml train on data in their datasets' real layouts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fcnseg.cli.main import main

from .fixtures_tools import make_ade20k, make_cityscapes

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


# ade20k is slow only because the end-of-run confusion picture of 150 classes takes ~10 s to draw
@pytest.mark.parametrize("name", ["cityscapes", pytest.param("ade20k", marks=pytest.mark.slow)])
def test_recipe_runs_on_the_real_layout(tmp_path, capsys, name: str) -> None:
    {"cityscapes": make_cityscapes, "ade20k": make_ade20k}[name](tmp_path / "data")
    overrides = [
        f"data.root={tmp_path / 'data'}",
        "model.backbone_weights=null",
        "model.width=0.0625",
        "data.crop_size=16",
        "data.batch_size=2",
        "data.workers=0",
        "train.amp=false",
        "train.max_iter=2",
        "train.eval_every=2",
        "train.checkpoint_every=2",
        "eval.grid_images=1",
    ]
    run = tmp_path / "run"
    assert main(["train", str(CONFIGS / f"{name}-fcn8s.yaml"), "--out", str(run), "--quiet", "--set", *overrides]) == 0
    capsys.readouterr()
    metrics = json.loads((run / "metrics.json").read_text())
    assert len(metrics["iu"]) == {"cityscapes": 19, "ade20k": 150}[name]
    assert metrics["unpredictable_labels"] == {"pixels": 0, "values": []}
