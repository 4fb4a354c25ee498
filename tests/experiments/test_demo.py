"""``fcnseg demo`` at a tiny setting: the staged nets, the held-out table, pictures and report; the shipped
classifier (its loader, its regeneration's determinism, and — slow — its bit-for-bit regeneration)."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from fcnseg.data import SyntheticShapes
from fcnseg.errors import ConfigError
from fcnseg.experiments.demo import pretrain_demo_classifier, run_demo, table
from fcnseg.experiments.miniature import VGGClassifier
from fcnseg.experiments.scale import CLASSIFIER, CLASSIFIER_SCALE, DEMO
from fcnseg.pretrained import pretrained_path

TINY = replace(DEMO, seg_size=32, seg_images=8, seg_steps=2, val_images=2, test_images=2, eval_every=1)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory) -> Path:
    """A random VGG16-pattern classifier of the shipped layout (its weights do not matter here)."""
    torch.manual_seed(0)
    state = VGGClassifier(DEMO.width, len(SyntheticShapes.classes)).eval().vgg_state_dict()
    path = tmp_path_factory.mktemp("cls") / "classifier.safetensors"
    save_file({k: v.half() for k, v in state.items()}, str(path))
    return path


def test_demo_trains_the_three_stages_and_writes_table_pictures_and_report(tmp_path, classifier, monkeypatch) -> None:
    import fcnseg.viz
    from fcnseg.viz import VOID_LABEL

    figures = {}
    save = fcnseg.viz._save

    def keep(fig, path):  # the pictures as drawn, to check their layout
        fig.canvas.draw()
        figures[Path(path).name] = (
            fig.bbox.frozen(),
            [(lg.get_window_extent(), [t.get_text() for t in lg.get_texts()]) for lg in fig.legends],
            [a.get_ylabel() for a in fig.axes],
        )
        return save(fig, path)

    monkeypatch.setattr(fcnseg.viz, "_save", keep)
    result = run_demo(tmp_path, scale=TINY, device="cpu", classifier=classifier, quiet=True, log=lambda *a: None)
    page, ((box, names),), _ = figures["grid.png"]
    assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1
    assert VOID_LABEL in names and "background" in names  # the truth column has void borders
    assert "share of the true class's pixels" in figures["confusion.png"][2]  # the colour bar
    assert [n["label"] for n in result["nets"].values()] == ["FCN-32s", "FCN-16s", "FCN-8s"]
    assert [n["steps"] for n in result["nets"].values()] == [2, 4, 10]  # FCN-8s's stage is three times as long
    assert "dropout: 0" in (tmp_path / "fcn8s" / "config.yaml").read_text()
    for key in ("fcn16s", "fcn8s"):  # each stage starts from the one before
        assert f"init_from: {tmp_path}" in (tmp_path / key / "config.yaml").read_text()
    assert "backbone_weights: " + str(classifier) in (tmp_path / "fcn32s" / "config.yaml").read_text()
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    fcn8s = metrics["nets"]["fcn8s"]
    assert metrics["classes"] == list(SyntheticShapes.classes)
    assert list(fcn8s["per_class"]) == list(SyntheticShapes.classes)
    assert 0 <= fcn8s["mean_iu"] <= 1 and 0 <= fcn8s["boundary_mean_iu"] <= 1 and fcn8s["train_s"] > 0
    assert sum(map(sum, fcn8s["confusion"])) == 2 * 32 * 32 - sum(  # every scored pixel of the held-out scenes
        int((SyntheticShapes(2, 32, "test").generate(i)[1] == 255).sum()) for i in range(2)
    )
    for name in (
        "grid.png",
        "curves.png",
        "confusion.png",
        "checkpoints/best.safetensors",
        "predictions/example_1.png",
        "predictions/example_1_overlay.jpg",
    ):
        assert (tmp_path / name).is_file(), name
    report = (tmp_path / "report.md").read_text()
    for picture in ("](grid.png)", "](curves.png)", "](confusion.png)"):
        assert picture in report
    assert f"{100 * fcn8s['mean_iu']:.1f}" in report
    lines = table(result).splitlines()
    assert lines[0].split()[:5] == ["net", "stage", "steps", "total", "steps"] and [
        ln.split()[0] for ln in lines[1:]
    ] == [
        "FCN-32s",
        "FCN-16s",
        "FCN-8s",
    ]


def test_demo_refuses_a_missing_classifier_file(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"no-such\.safetensors: no such file"):
        run_demo(tmp_path, scale=TINY, device="cpu", classifier=tmp_path / "no-such.safetensors", log=lambda *a: None)


def test_shipped_classifier_is_small_package_data_that_loads_into_an_fcn() -> None:
    from fcnseg.models import get_model, load_backbone_weights
    from fcnseg.train.build import backbone_source

    path = pretrained_path(CLASSIFIER)
    assert path.stat().st_size <= 2 * 1024 * 1024
    net = get_model("fcn8s_vgg16", num_classes=9, width=DEMO.width, pad100=False)
    report = load_backbone_weights(net, backbone_source("fcnseg:" + CLASSIFIER))
    assert "fc6.weight" in report.coerced and "conv5_3.weight" in report.copied  # fc6: Linear → 7×7 conv
    with pytest.raises(ConfigError, match="fcnseg ships fcnseg:" + CLASSIFIER):
        pretrained_path("fcnseg:imagenet")


def test_classifier_regeneration_is_deterministic(tmp_path) -> None:
    tiny = replace(CLASSIFIER_SCALE, cls_size=200, cls_images=16, cls_epochs=1, cls_batch=8)
    a = pretrain_demo_classifier(tmp_path / "a.safetensors", scale=tiny, log=lambda *a: None)
    b = pretrain_demo_classifier(tmp_path / "b.safetensors", scale=tiny, log=lambda *a: None)
    assert a.read_bytes() == b.read_bytes()
    assert all(v.dtype == torch.float16 for v in load_file(str(a)).values())


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("FCNSEG_REBUILD_CLASSIFIER"),
    reason="about 10 CPU minutes, and bit-exact only on the CPU kind that built it (floating-point kernels "
    "differ between AVX-512 and AMX machines): run with FCNSEG_REBUILD_CLASSIFIER=1",
)
def test_regenerating_the_shipped_classifier_gives_the_same_bytes(tmp_path) -> None:
    """``fcnseg experiment classifier`` reproduces the shipped file (same torch build and CPU type)."""
    shipped = pretrained_path(CLASSIFIER)
    again = pretrain_demo_classifier(tmp_path / "again.safetensors", log=lambda *a: None)
    assert hashlib.sha256(again.read_bytes()).hexdigest() == hashlib.sha256(shipped.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--steps", "0"], "--steps 0: needs at least 1 step"),
        (["--classifier", "fcnseg:nope"], "no such shipped weights"),
    ],
)
def test_demo_cli_refuses_bad_arguments_in_one_line(tmp_path, capsys, args, words) -> None:
    from fcnseg.cli.main import main

    assert main(["demo", "--out", str(tmp_path / "d"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1 and not (tmp_path / "d").exists()
