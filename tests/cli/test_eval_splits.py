"""``fcnseg eval --split S`` scores the split the run's report means, with the size it says."""

from __future__ import annotations

import json

import pytest

from fcnseg.cli.main import main
from fcnseg.data import SyntheticShapes, eval_transforms
from fcnseg.inference import Segmenter
from fcnseg.runtime import evaluate, main_scores
from fcnseg.train import fit
from tests.helpers import tiny


def test_eval_takes_each_splits_own_options_and_says_how_many_images(tmp_path, capsys) -> None:
    run = tmp_path / "run"
    cfg = tiny("train.max_iter=2", "data.val_options={n: 3}", "data.test_options={n: 5}")
    fit(cfg, run, progress=False)
    ckpt = str(run / "checkpoints" / "last.safetensors")
    for split, n in (("test", 5), ("val", 3), ("train", 64)):
        out = tmp_path / f"eval-{split}"
        assert main(["eval", "--checkpoint", ckpt, "--split", split, "--engine", "torch", "--out", str(out)]) == 0
        assert f"synthetic split {split!r}: {n} image(s)" in capsys.readouterr().out
    # the held-out number is the one the library computes on those 5 scenes
    seg = Segmenter(ckpt, engine="torch", device="cpu")
    ds = SyntheticShapes(5, 32, "test", transforms=eval_transforms(seg.preprocessing))
    want = main_scores(evaluate(seg.model, ds, seg.model.num_classes))["mean_iu"]
    got = json.loads((tmp_path / "eval-test" / "metrics.json").read_text())["mean_iu"]
    assert got == pytest.approx(want, abs=1e-9)
