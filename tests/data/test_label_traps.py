"""The classic label traps are caught: binary 0/255 masks, stray values, labels the model cannot predict,
masks resized with anything but nearest neighbour; data check names the synthetic set's classes."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from torchvision import tv_tensors

import fcnseg
from fcnseg.cli.main import main
from fcnseg.data import get_dataset
from fcnseg.data.check import check_dataset
from fcnseg.data.label_stats import LabelStats
from fcnseg.data.synthetic import SHAPE_CLASSES
from fcnseg.data.transforms import augmentations
from fcnseg.errors import DataError, DataWarning
from fcnseg.preprocessing import IMAGENET
from fcnseg.runtime.checkpoint import CheckpointInfo, model_kwargs, save_checkpoint

from .fixtures import jpeg, palette_png


def _masks(root, arrays):
    for n, m in enumerate(arrays):
        jpeg(root / "images" / f"m{n}.jpg", *m.shape, seed=n)
        palette_png(root / "masks" / f"m{n}.png", m)


def _binary(n=2):
    out = []
    for i in range(n):
        m = np.zeros((16, 16), np.uint8)
        m[4 : 10 + i, 3:12] = 255
        out.append(m)
    return out


def test_binary_masks_are_refused_when_classes_come_from_the_labels(tmp_path) -> None:
    _masks(tmp_path, _binary())
    with pytest.raises(DataError) as e:  # was: one class, "class_0", and the foreground ignored
        get_dataset("folder", tmp_path)
    msg = str(e.value)
    assert (
        "masks: every mask holds only the values 0 and 255 (e.g. " in msg and "m0.png" in msg and "binary=True" in msg
    )
    ds = get_dataset("folder", tmp_path, binary=True)
    assert ds.classes == ("class_0", "class_1")
    assert sorted(np.unique(ds[0][1].numpy()).tolist()) == [0, 1]


def test_binary_masks_with_given_classes_are_a_check_warning(tmp_path, capsys) -> None:
    _masks(tmp_path, _binary())
    with pytest.warns(DataWarning, match=r"masks: every mask holds only the values 0 and 255 \(e.g. .*m0.png\)"):
        ds = get_dataset("folder", tmp_path, classes=["background", "crack"])  # training on it says so too
    report = check_dataset(ds)
    assert report.ok and any("only the values 0 and 255" in w and "m0.png" in w for w in report.warnings)
    assert main(["data", "check", str(tmp_path), "--dataset", "folder", "-o", "classes=[background, crack]"]) == 0
    out = capsys.readouterr().out
    assert "  warning: every mask holds only the values 0 and 255" in out
    assert main(["data", "check", str(tmp_path), "--dataset", "folder", "-o", "binary=true"]) == 0
    assert "warning: every mask" not in capsys.readouterr().out
    assert warnings.formatwarning("m", DataWarning, "f.py", 1) == "fcnseg: warning: m\n"  # one line from the CLI


def test_one_stray_value_does_not_create_255_classes(tmp_path) -> None:
    masks = [np.random.default_rng(i).integers(0, 3, (32, 32)).astype(np.uint8) for i in range(3)]
    masks[2][5, 5] = 254
    _masks(tmp_path, masks)
    with pytest.raises(DataError, match=r"label value\(s\) 254 \(1 px, in .*m2.png\) are rare and far above"):
        get_dataset("folder", tmp_path)  # was: 255 classes, class_0 … class_254


def test_stray_values_and_labels_above_the_class_count_in_data_check(tmp_path, capsys) -> None:
    masks = [np.random.default_rng(i).integers(0, 2, (64, 64)).astype(np.uint8) for i in range(3)]
    masks[1][0, 0] = 4
    _masks(tmp_path, masks)
    report = check_dataset(get_dataset("folder", tmp_path, classes=list("abcde")))
    assert report.ok
    assert any("4 (1 px, in" in w and "m1.png" in w for w in report.warnings), report.warnings
    assert "2 of 5 classes have no pixels here: 2 (c), 3 (d)" in report.warnings
    assert main(["data", "check", str(tmp_path), "--dataset", "folder", "-o", "classes=[a, b, c]"]) == 1
    out = capsys.readouterr().out
    assert "problem: " in out and "m1.png: labels [4] are outside 0..2" in out


def test_label_stats_leave_ordinary_data_alone() -> None:
    stats = LabelStats()
    for i in range(4):
        m = np.random.default_rng(i).integers(0, 5, (32, 32))
        m[0] = 255
        stats.add(m, f"f{i}.png")
    assert stats.warnings([f"c{i}" for i in range(5)]) == []
    assert stats.warnings([f"c{i}" for i in range(6)]) == ["1 of 6 classes have no pixels here: 5 (c5)"]


def test_data_check_names_the_synthetic_classes(tmp_path, capsys) -> None:
    assert main(["data", "synth", "--out", str(tmp_path / "d"), "--num-images", "4", "--size", "32"]) == 0
    assert main(["data", "check", str(tmp_path / "d"), "--dataset", "voc"]) == 0
    out = capsys.readouterr().out
    assert all(f" {name} " in out for name in SHAPE_CLASSES) and "aeroplane" not in out
    assert main(["data", "check", "-", "--dataset", "synthetic", "-o", "n=3", "-o", "size=32"]) == 0
    out = capsys.readouterr().out
    assert all(f" {name} " in out for name in SHAPE_CLASSES) and "aeroplane" not in out


def test_eval_reports_labels_the_model_cannot_predict(tmp_path, capsys) -> None:
    masks = [np.random.default_rng(i).integers(0, 3, (32, 32)).astype(np.uint8) for i in range(2)]
    masks[1][:4, :] = 4  # 128 pixels of class 4 and …
    masks[0][0, :5] = 3  # … 5 of class 3, for a 3-class model
    masks[0][1, :] = 255
    _masks(tmp_path / "data", masks)
    torch.manual_seed(0)
    model = fcnseg.get_model("fcn8s_resnet18", num_classes=3, width=1 / 16)
    info = CheckpointInfo(
        arch="fcn8s_resnet18",
        model_kwargs=model_kwargs(model),
        classes=["a", "b", "c"],
        preprocessing=IMAGENET.to_dict(),
    )
    ckpt = save_checkpoint(tmp_path / "model", model, info)
    assert (
        main(
            [
                "eval",
                "--checkpoint",
                str(ckpt),
                "--dataset",
                "folder",
                "--root",
                str(tmp_path / "data"),
                "--split",
                "val",
                "--out",
                str(tmp_path / "ev"),
                "--grid",
                "0",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "warning: 133 labelled pixels carry values [3, 4] that this model (3 classes, 0..2) cannot predict" in out
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["unpredictable_labels"] == {"pixels": 133, "values": [3, 4]}


def test_eval_of_predictable_labels_reports_none(tmp_path, capsys) -> None:
    from fcnseg.runtime.evaluation import evaluate

    ds = get_dataset("synthetic", None, "val", n=2, size=32)
    model = fcnseg.get_model("fcn8s_resnet18", num_classes=len(SHAPE_CLASSES), width=1 / 16)
    assert evaluate(model, ds, len(SHAPE_CLASSES))[""]["unpredictable_labels"] == {"pixels": 0, "values": []}


@pytest.mark.parametrize("seed", range(4))
def test_masks_are_only_ever_resampled_with_nearest_neighbour(seed: int) -> None:
    torch.manual_seed(seed)
    mask = torch.zeros(48, 48, dtype=torch.int64)
    mask[:, 16:32] = 20  # stripes 0 | 20 | 7: bilinear resampling would create values such as 10 or 13
    mask[:, 32:] = 7
    image = tv_tensors.Image(mask.to(torch.uint8).expand(3, 48, 48).clone())
    steps = augmentations(crop_size=40, scale_range=(0.5, 2.0), flip=True)
    out_img, out_mask = image, tv_tensors.Mask(mask)
    for step in steps:
        out_img, out_mask = step(out_img, out_mask)
    values = set(torch.unique(out_mask).tolist())
    assert out_mask.shape == (40, 40) and values <= {0, 7, 20, 255} and len(values - {255}) >= 2, values
    kept = out_mask != 255
    np.testing.assert_array_equal(
        out_mask[kept].numpy(), out_img[0][kept].numpy()
    )  # labels moved with the pixels (nearest, as the image here)


def test_masks_with_many_labels_keep_their_values_when_scaled() -> None:
    torch.manual_seed(0)
    mask = torch.arange(40).repeat_interleave(2).expand(80, 80).clone()  # labels 0…39 in 2-px columns
    (step,) = augmentations(scale_range=(1.37, 1.37))
    out = step(tv_tensors.Mask(mask))
    assert set(torch.unique(out).tolist()) <= set(range(40)) | {255}
