"""Heads: one shape (``{head: scores}``) and one owner of class names, for train, eval and the experiments."""

from __future__ import annotations

import json

import pytest
import torch

import fcnseg
from fcnseg.cli.main import main
from fcnseg.data.classes import SIFTFLOW_GEOMETRIC_CLASSES, SIFTFLOW_SEMANTIC_CLASSES
from fcnseg.preprocessing import CAFFE_SIFTFLOW
from fcnseg.runtime import heads
from fcnseg.runtime.checkpoint import CheckpointInfo, model_kwargs, save_checkpoint
from fcnseg.runtime.evaluation import evaluate


def test_single_head_evaluation_has_the_same_shape_as_multi_head() -> None:
    from fcnseg.data import SyntheticShapes
    from fcnseg.data.transforms import eval_transforms
    from fcnseg.preprocessing import IMAGENET

    model = fcnseg.get_model("fcn8s_resnet18", num_classes=9, width=1 / 16)
    ds = SyntheticShapes(2, 32, "val", transforms=eval_transforms(IMAGENET))
    assert list(evaluate(model, ds, 9)) == [""]
    assert heads.head_classes([""], ds) == {"": list(ds.classes)}


def test_head_classes_take_the_checkpoint_for_the_first_head_and_the_dataset_for_the_rest(tmp_path) -> None:
    from fcnseg.data import get_dataset
    from tests.data.fixtures import make_siftflow

    make_siftflow(tmp_path)
    ds = get_dataset("siftflow", tmp_path, "test")
    assert ds.head_classes == {"sem": list(SIFTFLOW_SEMANTIC_CLASSES), "geo": list(SIFTFLOW_GEOMETRIC_CLASSES)}
    names = heads.head_classes(["sem", "geo"], ds, classes=["a", "b"])
    assert names == {"sem": ["a", "b"], "geo": list(SIFTFLOW_GEOMETRIC_CLASSES)}
    assert heads.head_classes(["sem", "geo"]) == {"sem": [], "geo": []}


def test_two_head_eval_labels_each_head_with_its_own_classes(tmp_path, monkeypatch, capsys) -> None:
    """SIFT Flow layout, a sem + geo net: each head's table, metrics.json entry and confusion picture is
    labelled with that head's classes (the geometry head once got the 33 semantic names)."""
    import fcnseg.viz
    from tests.data.fixtures import make_siftflow

    make_siftflow(tmp_path / "sf")
    model = fcnseg.get_model("fcn8s_vgg16", heads={"sem": 33, "geo": 3}, width=1 / 16)
    config = {"data": {"name": "siftflow", "root": str(tmp_path / "sf"), "val_split": "test"}}
    info = CheckpointInfo(
        arch=model.arch,
        model_kwargs=model_kwargs(model),
        classes=list(SIFTFLOW_SEMANTIC_CLASSES),
        preprocessing=CAFFE_SIFTFLOW.to_dict(),
        config=config,
    )
    ckpt = save_checkpoint(tmp_path / "ck", model, info)
    pictures: dict[str, list[str]] = {}
    real = fcnseg.viz.save_confusion

    def recording(path, hist, classes):
        pictures[path.name] = list(classes)
        return real(path, hist, classes)

    monkeypatch.setattr(fcnseg.viz, "save_confusion", recording)
    assert (
        main(["eval", "--checkpoint", str(ckpt), "--out", str(tmp_path / "out"), "--grid", "0", "--device", "cpu"]) == 0
    )
    printed = capsys.readouterr().out
    sem_table, geo_table = printed.split("[geo]")
    assert "[sem]" in sem_table and "awning" in sem_table and "horizontal" not in sem_table
    assert all(name in geo_table for name in SIFTFLOW_GEOMETRIC_CLASSES) and "awning" not in geo_table
    assert pictures == {
        "confusion_sem.png": list(SIFTFLOW_SEMANTIC_CLASSES),
        "confusion_geo.png": list(SIFTFLOW_GEOMETRIC_CLASSES),
    }
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert list(saved["geo"]["per_class"]) == list(SIFTFLOW_GEOMETRIC_CLASSES)
    assert list(saved["sem"]["per_class"]) == list(SIFTFLOW_SEMANTIC_CLASSES)
    assert (tmp_path / "out" / "confusion_geo.png").is_file()


@pytest.mark.parametrize("multi", [False, True])
def test_metrics_json_is_flat_for_one_head_and_per_head_for_several(tmp_path, multi) -> None:
    scores = {
        "pixel_accuracy": 1.0,
        "mean_accuracy": 1.0,
        "mean_iu": 1.0,
        "fw_iu": 1.0,
        "iu": [1.0, float("nan")],
        "accuracy": [1.0, float("nan")],
        "confusion": torch.eye(2, dtype=torch.int64).tolist(),
    }
    metrics = {"a": scores, "b": scores} if multi else {"": scores}
    heads.write_metrics(tmp_path, metrics, {h: ["x", "y"] for h in metrics})
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert (set(saved) == {"a", "b"}) if multi else ("mean_iu" in saved and "confusion" not in saved)
    assert (saved["a"] if multi else saved)["per_class"]["y"] == {"iu": None, "accuracy": None}
