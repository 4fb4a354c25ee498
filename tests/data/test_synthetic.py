"""SyntheticShapes: determinism, the detail that makes stride matter, class balance, classification."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fcnseg.data import SyntheticShapes
from fcnseg.data.check import check_dataset, write_voc_layout
from fcnseg.data.synthetic import SHAPE_CLASSES
from fcnseg.data.voc import VOCSegmentation
from fcnseg.errors import DataError


def test_same_seed_same_bytes_other_seed_or_split_differs() -> None:
    a = SyntheticShapes(5, 64, seed=3)[4]
    b = SyntheticShapes(5, 64, seed=3)[4]
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], SyntheticShapes(5, 64, seed=4)[4][0])
    assert not torch.equal(a[0], SyntheticShapes(5, 64, split="val", seed=3)[4][0])


def test_classes_and_balance_over_many_scenes() -> None:
    ds = SyntheticShapes(300, 64, seed=0)
    assert len(SHAPE_CLASSES) >= 9 and ds.classes[0] == "background"
    present = np.zeros(len(SHAPE_CLASSES))
    for i in range(len(ds)):
        _, m, _ = ds.generate(i)
        present[np.unique(m[m != 255])] += 1
    shapes = present[1:]
    assert shapes.min() > 0.5 * shapes.mean()  # every shape class appears in a fair share of scenes


def test_void_border_thin_and_small_structures() -> None:
    ds = SyntheticShapes(200, 128, seed=1)
    has_void = small = thin = 0
    for i in range(len(ds)):
        _, m, _ = ds.generate(i)
        has_void += (m == 255).any()
        for c in range(1, len(SHAPE_CLASSES)):
            area = int((m == c).sum())
            if 0 < area < 32 * 32 // 4:
                small += 1
        thin += (m == SHAPE_CLASSES.index("line")).sum() > 0
    assert has_void == len(ds)  # every scene has object borders labelled 255
    assert small > 50 and thin > 20


def test_colour_does_not_determine_class() -> None:
    """Mean object colour per class is near the global mean: the class must come from the shape."""
    ds = SyntheticShapes(200, 64, seed=2)
    means = {c: [] for c in range(1, len(SHAPE_CLASSES))}
    for i in range(len(ds)):
        img, m, _ = ds.generate(i)
        for c in np.unique(m):
            if 0 < c < 255:
                means[int(c)].append(img[m == c].mean(0))
    per_class = np.array([np.mean(v, 0) for v in means.values()])
    assert np.abs(per_class - per_class.mean(0)).max() < 40


def test_classification_variant_is_the_largest_object() -> None:
    seg = SyntheticShapes(10, 64, seed=5)
    cls = SyntheticShapes(10, 64, seed=5, task="classification")
    for i in range(10):
        _, m, _ = seg.generate(i)
        counts = np.bincount(m[(m != 255) & (m != 0)].ravel(), minlength=len(SHAPE_CLASSES))
        image, label = cls[i]
        assert image.shape == (3, 64, 64) and int(label) == int(counts.argmax())


def test_bad_arguments() -> None:
    with pytest.raises(DataError, match="split"):
        SyntheticShapes(split="nope")
    with pytest.raises(DataError, match="task"):
        SyntheticShapes(task="detection")


def test_voc_layout_export_round_trips_through_the_voc_loader(tmp_path) -> None:
    write_voc_layout(tmp_path, n=10, size=48, seed=0)
    train = VOCSegmentation(tmp_path, "train")
    assert len(train) == 8 and len(VOCSegmentation(tmp_path, "val")) == 2
    _, mask = train[0]
    _, expected, _ = SyntheticShapes(8, 48, "train", 0).generate(0)
    np.testing.assert_array_equal(mask.numpy(), expected)  # PNG labels are lossless
    report = check_dataset(train)
    assert report.ok and report.samples == 8 and report.frequencies()[0] > 0.5


def test_check_collects_every_problem(tmp_path) -> None:
    write_voc_layout(tmp_path, n=5, size=32)
    base = tmp_path / "VOCdevkit" / "VOC2012"
    (base / "JPEGImages" / "synth_train_000000.jpg").write_bytes(b"")
    (base / "SegmentationClass" / "synth_train_000001.png").unlink()
    report = check_dataset(VOCSegmentation(tmp_path, "train"))
    assert not report.ok and report.samples == 2 and len(report.problems) == 2
