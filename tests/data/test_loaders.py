"""Each loader on fixtures in its real format, plus the real VOC demo image and label."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import tv_tensors

from fcnseg.data import (
    NYUDv2,
    PASCALContext,
    SBDSegmentation,
    SIFTFlow,
    VOCSegmentation,
    get_dataset,
    list_datasets,
)
from fcnseg.data.classes import (
    CONTEXT59_CLASSES,
    NYUD40_CLASSES,
    SIFTFLOW_GEOMETRIC_CLASSES,
    SIFTFLOW_SEMANTIC_CLASSES,
    VOC_CLASSES,
)
from fcnseg.data.nyud import LOG_DEPTH_MEAN
from fcnseg.errors import DataError, ModelError

from .fixtures import make_context, make_nyud, make_sbd, make_siftflow, make_voc


def _contract(image, mask) -> None:
    assert isinstance(image, tv_tensors.Image) and image.dtype == torch.uint8 and image.shape[0] == 3
    for m in mask.values() if isinstance(mask, dict) else [mask]:
        assert isinstance(m, tv_tensors.Mask) and m.dtype == torch.int64 and m.shape == image.shape[1:]


def test_registry_names() -> None:
    assert set(list_datasets()) == {
        "voc",
        "sbd",
        "siftflow",
        "nyudv2",
        "pascal_context",
        "cityscapes",
        "ade20k",
        "coco",
        "folder",
        "synthetic",
    }
    with pytest.raises(ModelError, match=r"Unknown dataset 'vocc'.*Did you mean 'voc'"):
        get_dataset("vocc", ".")


def test_class_lists_match_the_reference_files(reference_dir) -> None:
    assert list(VOC_CLASSES) == [
        x.strip() for x in (reference_dir / "pascal/classes.txt").read_text().splitlines()[:21]
    ]
    assert (
        len(SIFTFLOW_SEMANTIC_CLASSES) == 33
        and SIFTFLOW_SEMANTIC_CLASSES[0] == "awning"
        and SIFTFLOW_SEMANTIC_CLASSES[-1] == "window"
    )
    assert SIFTFLOW_GEOMETRIC_CLASSES == ("sky", "horizontal", "vertical")
    assert list(NYUD40_CLASSES) == (reference_dir / "nyud/classes.txt").read_text().splitlines()[:40]
    assert len(CONTEXT59_CLASSES) == 60 and CONTEXT59_CLASSES[0] == "background"


def test_voc_decodes_palette_pngs_and_splits(tmp_path, reference_dir) -> None:
    masks = make_voc(tmp_path, reference_dir)
    ds = get_dataset("voc", tmp_path, "train")
    assert isinstance(ds, VOCSegmentation) and len(ds) == 2 and ds.num_classes == 21 and ds.ignore_index == 255
    image, mask = ds[0]
    _contract(image, mask)
    np.testing.assert_array_equal(mask.numpy(), masks["2008_000001"])
    assert len(VOCSegmentation(tmp_path, "trainval")) == 4
    seg11 = VOCSegmentation(tmp_path, "seg11valid")
    assert len(seg11) == 736 and seg11.ids[0] == "2007_000033"
    np.testing.assert_array_equal(seg11[0][1].numpy(), masks["2007_000033"])  # present in the fixture


def test_voc_real_demo_image_and_label(tmp_path, reference_dir) -> None:
    make_voc(tmp_path, reference_dir)
    ds = VOCSegmentation(tmp_path, "val")
    image, mask = ds[ds.ids.index("demo")]
    _contract(image, mask)
    assert tuple(image.shape) == (3, 500, 334)  # portrait: 334 wide, 500 tall
    assert set(mask.unique().tolist()) == {0, 2, 15, 255}  # background, bicycle, person, void
    ref = np.asarray(Image.open(reference_dir / "demo" / "image.jpg").convert("RGB"))
    np.testing.assert_array_equal(image.permute(1, 2, 0).numpy(), ref)


def test_voc_errors_name_the_file(tmp_path) -> None:
    with pytest.raises(DataError, match="VOCdevkit folder not found"):
        VOCSegmentation(tmp_path)
    make_voc(tmp_path)
    with pytest.raises(DataError, match="split must be"):
        VOCSegmentation(tmp_path, "test")
    base = tmp_path / "VOCdevkit" / "VOC2012"
    (base / "JPEGImages" / "2008_000001.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=r"2008_000001\.jpg: not an image"):
        VOCSegmentation(tmp_path)[0]
    (base / "SegmentationClass" / "2008_000002.png").unlink()
    with pytest.raises(DataError, match=r"2008_000002\.png: file not found"):
        VOCSegmentation(tmp_path)[1]


def test_voc_labels_out_of_range_and_size_mismatch(tmp_path) -> None:
    from .fixtures import palette_png

    make_voc(tmp_path)
    seg = tmp_path / "VOCdevkit" / "VOC2012" / "SegmentationClass"
    bad = np.zeros((20, 30), np.uint8)
    bad[3, 3] = 40
    palette_png(seg / "2008_000001.png", bad)
    with pytest.raises(DataError, match=r"2008_000001\.png: labels \[40\] are outside 0\.\.20"):
        VOCSegmentation(tmp_path)[0]
    palette_png(seg / "2008_000001.png", np.zeros((5, 5), np.uint8))
    with pytest.raises(DataError, match=r"2008_000001\.png: mask is 5×5 but its image is 30×20"):
        VOCSegmentation(tmp_path)[0]


def test_sbd_reads_gtcls_and_the_reference_training_split(tmp_path) -> None:
    masks = make_sbd(tmp_path)
    ds = SBDSegmentation(tmp_path, "train")
    assert ds.ids == ["2008_000001", "2007_000033", "2008_000003"]
    image, mask = ds[1]
    _contract(image, mask)
    np.testing.assert_array_equal(mask.numpy(), masks["2007_000033"])
    ref = get_dataset("sbd", tmp_path, "train-seg11valid")
    assert ref.ids == ["2008_000001", "2008_000003"]  # 2007_000033 is in seg11valid
    assert len(SBDSegmentation(tmp_path, "val")) == 1


def test_sbd_corrupt_mat_names_the_file(tmp_path) -> None:
    make_sbd(tmp_path)
    (tmp_path / "dataset" / "cls" / "2008_000001.mat").write_bytes(b"\x00garbage")
    with pytest.raises(DataError, match=r"2008_000001\.mat: not a readable MATLAB"):
        SBDSegmentation(tmp_path)[0]


def test_siftflow_two_masks_with_void(tmp_path) -> None:
    raw = make_siftflow(tmp_path)
    ds = SIFTFlow(tmp_path, "trainval")
    image, masks = ds[0]
    _contract(image, masks)
    sem, geo = raw["coast_a1"]
    np.testing.assert_array_equal(masks["sem"].numpy(), np.where(sem == 0, 255, sem - 1))
    np.testing.assert_array_equal(masks["geo"].numpy(), np.where(geo == -1, 255, geo - 1))
    assert masks["sem"].max() <= 255 and set(masks["geo"].unique().tolist()) <= {0, 1, 2, 255}
    assert SIFTFlow(tmp_path, "test").ids == ["forest_c3"]  # the unannotated highway_bost181 is excluded


def test_siftflow_bundled_lists_when_root_has_none(tmp_path) -> None:
    make_siftflow(tmp_path)
    (tmp_path / "trainval.txt").unlink()
    assert len(SIFTFlow(tmp_path, "trainval")) == 2486


def test_nyud_modalities(tmp_path) -> None:
    raw = make_nyud(tmp_path)
    color = NYUDv2(tmp_path, "train")
    image, mask = color[0]
    _contract(image, mask)
    np.testing.assert_array_equal(mask.numpy(), np.where(raw["5001"] == 0, 255, raw["5001"].astype(int) - 1))
    rgbd = NYUDv2(tmp_path, "train", modalities=("color", "depth"))
    x, _ = rgbd[0]
    assert x.shape == (4, 10, 14) and x.dtype == torch.float32 and rgbd.in_channels == 4
    depth = np.asarray(Image.open(tmp_path / "data/depth/img_5001.png")).astype(np.float64)
    np.testing.assert_allclose(x[3].numpy(), np.log(np.maximum(depth, 1)) - LOG_DEPTH_MEAN, atol=1e-6)
    hha = NYUDv2(tmp_path, "trainval", modalities=("color", "hha"))
    assert len(hha) == 3 and hha[0][0].shape == (6, 10, 14) and hha[0][0].dtype == torch.uint8
    pre = hha.preprocess(hha[0][0])
    assert pre.shape == (6, 10, 14) and pre.dtype == torch.float32
    with pytest.raises(DataError, match="modalities"):
        NYUDv2(tmp_path, modalities=("rgb",))


def test_context_maps_full_labels_to_the_59_task(tmp_path, reference_dir) -> None:
    make_context(tmp_path, reference_dir)
    ds = get_dataset("pascal_context", tmp_path, "train")
    image, mask = ds[0]
    _contract(image, mask)
    assert ds.num_classes == 60
    row = mask[0, :4].tolist()
    assert [CONTEXT59_CLASSES[i] for i in row] == ["diningtable", "bedcloth", "clothes", "aeroplane"]
    assert mask.max() < 60  # everything outside the 59 is background


def test_context_missing_labels_txt(tmp_path, reference_dir) -> None:
    make_context(tmp_path, reference_dir)
    (tmp_path / "labels.txt").unlink()
    with pytest.raises(DataError, match=r"labels\.txt: PASCAL-Context full label list not found"):
        PASCALContext(tmp_path)
