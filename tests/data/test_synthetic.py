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
        # the label is the largest by visible area before the 1-px void border (which can void a whole
        # 3-px line), so it is the largest interior up to those borders
        assert image.shape == (3, 64, 64) and int(label) == cls.generate(i)[2]
        assert counts[int(label)] >= 0.6 * counts.max()


def test_object_framing_is_one_large_centred_object_even_when_its_interior_is_void() -> None:
    ds = SyntheticShapes(40, 96, "val", task="classification", framing="object")
    for i in range(40):
        _, mask, label = ds.generate(i)
        drawn = mask != 0  # the object, interior and void border
        ys, xs = np.nonzero(drawn)
        assert label > 0 and set(np.unique(mask)) <= {0, label, 255}
        if SHAPE_CLASSES[label] not in ("line", "ring"):
            assert drawn.mean() > 0.04  # radius >= 18% of the side
            assert abs(ys.mean() - 48) < 20 and abs(xs.mean() - 48) < 20
    with pytest.raises(DataError, match="framing"):
        SyntheticShapes(framing="zoomed")


def test_cache_gives_the_same_samples_shared_and_read_only() -> None:
    plain, cached = SyntheticShapes(3, 48, seed=9), SyntheticShapes(3, 48, seed=9, cache=True)
    for i in range(3):
        a, b = plain[i], cached[i]
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    again = SyntheticShapes(3, 48, seed=9, cache=True)
    assert again.generate(1)[0] is cached.generate(1)[0]  # one copy per process
    assert not again.generate(1)[0].flags.writeable
    b[0][:] = 0  # samples handed out are copies: the cache is untouched
    assert torch.equal(cached[2][0], plain[2][0])


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
