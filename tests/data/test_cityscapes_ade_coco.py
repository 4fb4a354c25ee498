"""Cityscapes, ADE20K and COCO read from fixtures in their real layouts, exactly as their authors define them."""

from __future__ import annotations

import importlib.util
import json
import sys

import numpy as np
import pytest

from fcnseg.cli.main import main
from fcnseg.data import get_dataset
from fcnseg.data.ade20k import ADE20K_CLASSES
from fcnseg.data.cityscapes import CITYSCAPES_CLASSES, cityscapes_palette
from fcnseg.errors import DataError

from .fixtures_tools import CITYSCAPES_IDS, CITYSCAPES_TRAIN_IDS, grey_png, make_ade20k, make_cityscapes, make_coco

needs_coco = pytest.mark.skipif(
    importlib.util.find_spec("pycocotools") is None, reason="needs the coco extra: pip install 'fcnseg[coco]'"
)


def test_cityscapes_label_ids_become_the_19_train_ids(tmp_path) -> None:
    ids = make_cityscapes(tmp_path, coarse=True)
    ds = get_dataset("cityscapes", tmp_path, "train")
    assert len(ds) == 2 and ds.num_classes == 19 and ds.classes[0] == "road" and ds.classes[-1] == "bicycle"
    expected = dict(zip(CITYSCAPES_IDS.tolist(), CITYSCAPES_TRAIN_IDS.tolist(), strict=True))
    for i, stem in enumerate(["aachen_000000_000019", "bochum_000000_001097"]):
        image, mask = ds[i]
        assert image.shape == (3, 16, 32)
        np.testing.assert_array_equal(mask.numpy(), np.vectorize(expected.get)(ids[stem]))
    assert len(get_dataset("cityscapes", tmp_path, "val")) == 1
    coarse = get_dataset("cityscapes", tmp_path, "train", annotations="gtCoarse")
    assert coarse.mask_paths[0].name.endswith("_gtCoarse_labelIds.png")
    assert tuple(cityscapes_palette()[[0, 13, 18, 255]].tolist()) == (
        [128, 64, 128],
        [0, 0, 142],
        [119, 11, 32],
        [0, 0, 0],
    )
    assert len(CITYSCAPES_CLASSES) == 19


def test_cityscapes_errors_name_the_file(tmp_path) -> None:
    make_cityscapes(tmp_path)
    with pytest.raises(DataError, match="split must be train, val, test"):
        get_dataset("cityscapes", tmp_path, "training")
    label = tmp_path / "gtFine" / "train" / "aachen" / "aachen_000000_000019_gtFine_labelIds.png"
    grey_png(label, np.full((16, 32), 255))  # a _labelTrainIds file put in its place
    with pytest.raises(DataError, match=r"aachen_000000_000019_gtFine_labelIds.png: values up to 255.*labelTrainIds"):
        get_dataset("cityscapes", tmp_path, "train")[0]
    label.unlink()
    with pytest.raises(DataError, match=r"1 label file.*not found.*aachen_000000_000019_gtFine_labelIds.png"):
        get_dataset("cityscapes", tmp_path, "train")


@pytest.mark.parametrize("nested", [True, False])
@pytest.mark.parametrize("split", ["training", "train"])
def test_ade20k_reduce_zero_label(tmp_path, nested: bool, split: str) -> None:
    raw = make_ade20k(tmp_path)
    root = tmp_path if nested else tmp_path / "ADEChallengeData2016"
    ds = get_dataset("ade20k", root, split)
    assert len(ds) == 2 and ds.num_classes == 150 and ds.classes[:3] == ("wall", "building", "sky")
    assert len(set(ADE20K_CLASSES)) == 150 and ds.classes[-1] == "flag"
    mask = ds[0][1].numpy()
    want = np.where(raw["ADE_train_00000001"] == 0, 255, raw["ADE_train_00000001"] - 1)
    np.testing.assert_array_equal(mask, want)
    assert mask[0, :3].tolist() == [255, 0, 149]
    assert len(get_dataset("ade20k", root, "val")) == 1


def test_ade20k_value_above_150_is_an_error(tmp_path) -> None:
    make_ade20k(tmp_path)
    path = tmp_path / "ADEChallengeData2016" / "annotations" / "training" / "ADE_train_00000001.png"
    grey_png(path, np.full((24, 20), 151))
    with pytest.raises(DataError, match=r"ADE_train_00000001.png: values up to 151"):
        get_dataset("ade20k", tmp_path, "training")[0]


@needs_coco
def test_coco_polygons_rle_crowd_and_overlaps(tmp_path) -> None:
    expected = make_coco(tmp_path)
    ds = get_dataset("coco", tmp_path, "val2017")
    assert ds.classes == ("background", "person", "car", "toothbrush")  # ids 1, 3, 90 → 1, 2, 3
    assert len(ds) == 3
    for i, entry in enumerate(ds.images):
        np.testing.assert_array_equal(ds[i][1].numpy(), expected[entry["file_name"]], err_msg=entry["file_name"])
    assert len(get_dataset("coco", tmp_path, "val2017", drop_empty=True)) == 2
    as_objects = get_dataset("coco", tmp_path, "val2017", crowd="object")[1][1].numpy()
    assert (as_objects[12:18, 0:10] == 1).all()  # the crowd of persons counts as person


@needs_coco
def test_coco_stuff_style_categories_and_tool_exports(tmp_path) -> None:
    make_coco(tmp_path, split="default")
    path = tmp_path / "annotations" / "instances_default.json"
    data = json.loads(path.read_text())
    data["categories"] += [
        {"supercategory": "other", "id": 183, "name": "other"},
        {"supercategory": "textile", "id": 92, "name": "banner"},
    ]
    path.write_text(json.dumps(data))
    ds = get_dataset("coco", tmp_path, "default")
    assert ds.classes == ("background", "person", "car", "toothbrush", "banner", "other")
    assert ds.category_index == {1: 1, 3: 2, 90: 3, 92: 4, 183: 5}
    # Roboflow: train/_annotations.coco.json beside the images
    rf = tmp_path / "rf"
    make_coco(rf, split="train")
    (rf / "annotations" / "instances_train.json").rename(rf / "train" / "_annotations.coco.json")
    assert len(get_dataset("coco", rf, "train")) == 3
    # Label Studio: result.json beside images/, file names relative to the export ("images/…")
    ls = tmp_path / "ls"
    expected = make_coco(ls, split="images")
    data = json.loads((ls / "annotations" / "instances_images.json").read_text())
    for im in data["images"]:
        im["file_name"] = f"images/{im['file_name']}"
    (ls / "result.json").write_text(json.dumps(data))
    ds = get_dataset("coco", ls, "images", annotations="result.json")
    assert ds.image_dir == ls and len(ds) == 3
    np.testing.assert_array_equal(ds[0][1].numpy(), expected["000000000139.jpg"])


@needs_coco
def test_coco_bad_inputs_are_one_line(tmp_path, capsys) -> None:
    make_coco(tmp_path)
    path = tmp_path / "annotations" / "instances_val2017.json"
    data = json.loads(path.read_text())
    data["annotations"][0]["category_id"] = 7
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match="annotation 101 has category 7, which is not in 'categories'"):
        get_dataset("coco", tmp_path, "val2017")
    data["annotations"] = [{**a, "segmentation": [], "category_id": 1} for a in data["annotations"]]
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match="no annotation has a segmentation"):
        get_dataset("coco", tmp_path, "val2017")
    data["images"][0]["width"] = 31
    data["annotations"] = []
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"000000000139.jpg: image is 30×20 but instances_val2017.json says 31×20"):
        get_dataset("coco", tmp_path, "val2017")[0]
    path.write_text("{not json")
    assert main(["data", "check", str(tmp_path), "--dataset", "coco", "--split", "val2017"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "instances_val2017.json: not a JSON file" in err[0]


@needs_coco
def test_missing_pycocotools_names_the_extra(tmp_path, monkeypatch) -> None:
    make_coco(tmp_path)
    monkeypatch.setitem(sys.modules, "pycocotools", None)  # what an environment without the extra gives
    monkeypatch.setitem(sys.modules, "pycocotools.mask", None)
    with pytest.raises(DataError, match=r"pip install 'fcnseg\[coco\]'"):
        get_dataset("coco", tmp_path, "val2017")


@pytest.mark.parametrize("name", ["cityscapes", "ade20k", pytest.param("coco", marks=needs_coco)])
def test_data_check_runs_on_each(tmp_path, capsys, name: str) -> None:
    split = {"cityscapes": "train", "ade20k": "training", "coco": "val2017"}[name]
    {"cityscapes": make_cityscapes, "ade20k": make_ade20k, "coco": make_coco}[name](tmp_path)
    assert main(["data", "check", str(tmp_path), "--dataset", name, "--split", split]) == 0
    out = capsys.readouterr().out
    first = {"cityscapes": "road", "ade20k": "wall", "coco": "background"}[name]
    assert " 0 problem(s)" in out and f"  0 {first}" in out


def test_data_check_reports_image_and_mask_sizes_that_differ(tmp_path, capsys) -> None:
    make_ade20k(tmp_path)
    grey_png(
        tmp_path / "ADEChallengeData2016" / "annotations" / "training" / "ADE_train_00000002.png", np.ones((12, 20))
    )
    assert main(["data", "check", str(tmp_path), "--dataset", "ade20k", "--split", "training"]) == 1
    out = capsys.readouterr().out
    assert "1/2 samples readable, 1 problem(s)" in out
    assert "problem: " in out and "ADE_train_00000002.png: mask is 20×12 but its image is 20×24" in out
