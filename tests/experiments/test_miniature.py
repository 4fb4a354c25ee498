"""The miniature reproduction: the classifier transfers exactly, and the whole pipeline runs (smoke scale)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import fcnseg
from fcnseg.experiments.miniature import NETS, VGGClassifier, run_miniature, stages
from fcnseg.experiments.miniature.report import _findings


def test_folded_classifier_is_the_fcn_trunk_exactly() -> None:
    """BN folded into the convolutions and fc6/fc7, fc6 convolutionalized: the FCN computes the classifier's fc7."""
    torch.manual_seed(0)
    clf = VGGClassifier(0.0625, 9)
    for m in clf.modules():  # non-trivial batch-norm statistics
        if isinstance(m, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    clf.eval()
    fcn = fcnseg.get_model(
        "fcn32s_vgg16", num_classes=9, width=0.0625, pad100=False, backbone_weights=clf.vgg_state_dict()
    ).eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        feats = x
        for _name, layer in fcn.trunk_layers(fcn.streams[0]):
            feats = layer(feats)
        h = clf.drop(torch.relu(clf.bn_fc6(clf.fc6(_pool5(clf, x).flatten(1)))))
        fc7 = torch.relu(clf.bn_fc7(clf.fc7(h)))
    assert feats.shape[-2:] == (7, 7)
    torch.testing.assert_close(feats[0, :, 3, 3], fc7[0], rtol=1e-4, atol=1e-4)


def _pool5(clf: VGGClassifier, x: torch.Tensor) -> torch.Tensor:
    for name in clf.convs:
        x = getattr(clf, name)(x)
        if name.startswith("conv"):
            x = getattr(clf, f"bn_{name}")(x)
    return x


@pytest.mark.slow
def test_smoke_run_writes_the_report(tmp_path) -> None:
    result = run_miniature(tmp_path / "run", scale="smoke", report=tmp_path / "docs", log=lambda *_: None)
    assert list(result["nets"]) == list(NETS)
    for net in result["nets"].values():
        assert 0 <= net["mean_iu"] <= 1 and 0 <= net["boundary_mean_iu"] <= 1
    text = (tmp_path / "docs" / "RESULTS.md").read_text()
    assert "| FCN-32s-fixed |" in text and "| FCN-8s from scratch |" in text and "45.4" in text
    assert "| FCN-16s | 8 |" in text and "| FCN-32s, 3 stages (control) | 12 |" in text  # total steps
    findings = text.split("## What reproduces", 1)[1]
    verdicts = [line for line in findings.splitlines() if line.startswith("* **") and "**:" in line]
    assert len(verdicts) == 5  # a verdict for every claim, computed from the numbers
    saved = json.loads((tmp_path / "docs" / "results" / "miniature.json").read_text())
    assert (tmp_path / "docs" / "results" / "miniature.json").read_bytes() == (
        tmp_path / "run" / "miniature.json"
    ).read_bytes()
    assert set(saved["nets"]) == set(NETS) and saved["wall_s"] > 0
    for png in ("miniature-curves.png", "miniature-grid.png"):
        assert (tmp_path / "docs" / "results" / png).stat().st_size > 1000


def _nets(**miu: float) -> dict[str, dict[str, float]]:
    return {k: {"mean_iu": v, "boundary_mean_iu": v / 2} for k, v in miu.items()}


def test_verdicts_compare_at_an_equal_budget() -> None:
    """A skip net that only beats the one-stage FCN-32s, not the step-matched control, does not reproduce."""
    assert [stages(k) for k in NETS] == [1, 1, 2, 3, 2, 3, 1, 2, 3, 1]
    base = dict(
        fcn32s_fixed=0.1,
        fcn32s=0.4,
        fcn16s=0.6,
        fcn8s=0.65,
        fcn8s_atonce=0.4,
        fcn8s_atonce_x2=0.55,
        fcn8s_atonce_x3=0.64,
        fcn8s_scratch=0.2,
    )
    good = _findings(_nets(**base, fcn32s_x2=0.5, fcn32s_x3=0.55))
    assert [v.split("**")[1] for v in good] == ["Reproduces"] * 5
    slow_atonce = _findings(_nets(**(base | {"fcn8s_atonce_x3": 0.5}), fcn32s_x2=0.5, fcn32s_x3=0.55))
    assert slow_atonce[4].startswith("* **Does not reproduce**") and "at-once 50.0 vs staged 65.0" in slow_atonce[4]
    bad = _findings(_nets(**base, fcn32s_x2=0.62, fcn32s_x3=0.7))
    assert [v.split("**")[1] for v in bad[2:4]] == ["Does not reproduce"] * 2
    assert "FCN-16s 60.0 vs FCN-32s 62.0 after two stages" in bad[2]
    scratch_wins = _findings(_nets(**(base | {"fcn8s_scratch": 0.45}), fcn32s_x2=0.5, fcn32s_x3=0.55))
    assert scratch_wins[1].startswith("* **Does not reproduce**")


def test_converged_table2_trains_each_net_to_its_plateau_and_decides_over_seeds(tmp_path) -> None:
    from fcnseg.experiments.seeds import INCONCLUSIVE, NO, YES

    docs = tmp_path / "docs"
    result = run_miniature(tmp_path / "run", scale="converged-smoke", report=docs, log=lambda *_: None)
    rows = ["fcn32s_fixed", "fcn32s", "fcn16s", "fcn8s", "fcn8s_atonce", "fcn8s_onestage", "fcn8s_scratch"]
    assert list(result["nets"]) == rows
    # pretrained vs scratch: the same net, one stage, only the initialisation differs
    one, scratch = (result["nets"][k]["per_seed"][0]["dir"] for k in ("fcn8s_onestage", "fcn8s_scratch"))
    cfg_one, cfg_scratch = ((Path(d) / "config.yaml").read_text() for d in (one, scratch))
    assert "fcn8s_vgg16" in cfg_one and "fcn8s_vgg16" in cfg_scratch
    assert "backbone_weights: fcnseg:shapes-vgg16" in cfg_one and "backbone_weights: null" in cfg_scratch
    assert result["nets"]["fcn8s_onestage"]["label"] == "FCN-8s, one stage from the classifier"
    assert result["method"] == "plateau" and result["scale"]["name"] == "converged-smoke"
    for net in result["nets"].values():
        assert set(net["mean_iu"]) == {"mean", "sd", "values"} and net["seeds"] == [0]
        assert all(r["end"] in ("early_stop", "max_iter") for r in net["per_seed"])
    assert len(result["verdicts"]) == 5 and all(v["verdict"] in (YES, NO, INCONCLUSIVE) for v in result["verdicts"])
    # staged: FCN-16s started from FCN-32s's best checkpoint of the same seed
    cfg = (tmp_path / "run" / "fcn16s_staged" / "seed0" / "config.yaml").read_text()
    assert "fcn32s/seed0/checkpoints/best.safetensors" in cfg
    text = (docs / "RESULTS.md").read_text()
    assert "## Results (Table 2, in miniature, at convergence)" in text and "| FCN-8s at-once |" in text
    assert "the 7 trainings behind the table took" in text  # one-stage FCN-8s counted once, with its seed
    assert json.loads((docs / "results" / "miniature.json").read_text())["seeds"] == [0]


def test_table2_at_convergence_shares_the_paper_experiments_folder_and_no_other_scale_does(tmp_path) -> None:
    """Table 2 at convergence trains in the paper experiment's run layout and reuses its FCN-32s runs: a folder the
    paper experiment made is its own. The other scales write a layout of their own (``fcn32s/`` retrained with
    overwrite): they are refused it, as is a folder another command made."""
    from fcnseg.cli.commands import _common
    from fcnseg.errors import DataError
    from fcnseg.writes import Ledger

    paper = tmp_path / "runs"
    paper.mkdir()
    (paper / "fcn32s").mkdir()
    (paper / "paper.json").write_text("{}")
    Ledger(paper).mark_owner("experiment paper")
    with _common.experiment_folder(str(paper), "experiment miniature", overwrite=False, kin=("experiment paper",)):
        pass
    assert Ledger(paper).owner == "experiment paper"  # still the paper experiment's
    with pytest.raises(DataError, match="made by fcnseg experiment paper"):
        with _common.experiment_folder(str(paper), "experiment miniature", overwrite=False):
            pass
    other = tmp_path / "other"
    other.mkdir()
    (other / "x.txt").write_text("mine")
    Ledger(other).mark_owner("train")
    with pytest.raises(DataError, match="made by fcnseg train"):
        with _common.experiment_folder(str(other), "experiment miniature", overwrite=False, kin=("experiment paper",)):
            pass


@pytest.mark.parametrize(
    "scale, kin", [("converged", ("experiment paper",)), ("converged-smoke", ("experiment paper",)), ("small", ())]
)
def test_only_the_converged_scale_claims_the_paper_folder(monkeypatch, tmp_path, scale, kin) -> None:
    import contextlib

    from fcnseg.cli.commands import experiment_cmd
    from fcnseg.cli.main import main

    seen = []

    @contextlib.contextmanager
    def folder(out, kind, **kw):
        seen.append(kw.get("kin", ()))
        raise SystemExit(0)
        yield

    monkeypatch.setattr(experiment_cmd, "experiment_folder", folder)
    with pytest.raises(SystemExit):
        main(["experiment", "miniature", "--scale", scale, "--out", str(tmp_path / "o")])
    assert seen == [kin]
