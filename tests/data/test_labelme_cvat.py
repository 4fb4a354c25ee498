"""labelme JSON rendered as labelme draws it, into the folder dataset; CVAT "Segmentation mask 1.1" read as is."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from PIL import Image

from fcnseg.cli.main import main
from fcnseg.data import get_dataset
from fcnseg.data.labelme import import_labelme, read_labelme_labels
from fcnseg.errors import DataError

from .fixtures_tools import (
    CVAT_COLOURS,
    LABELME_LABELS,
    labelme_file,
    labelme_shape,
    make_cvat,
    make_labelme,
    png_bytes,
    rgb,
)


def test_labels_txt_in_labelmes_convention(tmp_path) -> None:
    (tmp_path / "labels.txt").write_text(LABELME_LABELS)
    assert read_labelme_labels(tmp_path / "labels.txt") == {"__ignore__": 255, "_background_": 0, "cat": 1, "dog": 2}
    (tmp_path / "bad.txt").write_text("cat\ndog\n")
    with pytest.raises(DataError, match=r"bad.txt: labelme labels start with __ignore__"):
        read_labelme_labels(tmp_path / "bad.txt")


def test_import_renders_every_shape_type_later_over_earlier(tmp_path, capsys) -> None:
    make_labelme(tmp_path)
    out = tmp_path / "ds"
    assert (
        main(
            [
                "data",
                "import",
                "labelme",
                str(tmp_path / "json"),
                "--labels",
                str(tmp_path / "labels.txt"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert "wrote 2 image(s)" in capsys.readouterr().out
    assert (out / "class_names.txt").read_text().split() == ["_background_", "cat", "dog"]
    assert (out / "images" / "a.jpg").read_bytes() == (tmp_path / "photos" / "a.jpg").read_bytes()  # not re-encoded
    assert (out / "images" / "b.png").is_file()  # from imageData, keeps its format
    m = np.asarray(Image.open(out / "masks" / "a.png"))
    assert Image.open(out / "masks" / "a.png").mode == "P"
    assert m[3, 2] == m[8, 5] == 1  # rectangle corners (inclusive), cat
    assert m[5, 8] == 2  # where the later dog polygon overlaps the cat, dog wins
    assert m[2, 2] == 0 and m[9, 2] == 0  # just outside the rectangle
    assert m[20, 30] == m[24, 30] == 2 and m[27, 30] == 0  # circle of radius 5 about (30, 20)
    assert m[34, 0] == m[30, 24] == m[38, 47] == 1 and m[28, 24] == 0  # 10-px line along y = 34
    assert m[6, 40] == m[6, 44] == m[2, 40] == 255 and m[6, 47] == m[6, 33] == 0  # point: r-5 disk, __ignore__
    tri = np.asarray(Image.open(out / "masks" / "b.png"))
    assert tri[2, 13] == 1 and tri[13, 2] == 0  # triangle (1,1)-(14,1)-(14,14): upper-right half
    ds = get_dataset("folder", out)
    assert ds.classes == ("_background_", "cat", "dog") and len(ds) == 2
    np.testing.assert_array_equal(ds[0][1].numpy(), m)
    assert main(["data", "check", str(out), "--dataset", "folder"]) == 0
    assert "  2 dog" in capsys.readouterr().out


def test_shape_order_decides_overlaps(tmp_path) -> None:
    img = tmp_path / "img" / "x.png"
    rgb(img, 10, 10, seed=0, fmt="PNG")
    (tmp_path / "labels.txt").write_text(LABELME_LABELS)
    box = [[0, 0], [9, 9]]
    for order, want in ((["cat", "dog"], 2), (["dog", "cat"], 1)):
        src = tmp_path / f"src_{want}"
        labelme_file(src / "x.json", img, [labelme_shape(n, box, "rectangle") for n in order], 10, 10, embed=True)
        import_labelme(src, tmp_path / "labels.txt", tmp_path / f"out_{want}")
        assert (np.asarray(Image.open(tmp_path / f"out_{want}" / "masks" / "x.png")) == want).all()


def test_mask_shape_is_pasted_at_its_box(tmp_path) -> None:
    img = tmp_path / "img" / "x.png"
    rgb(img, 12, 12, seed=0, fmt="PNG")
    (tmp_path / "labels.txt").write_text(LABELME_LABELS)
    part = np.zeros((3, 4), np.uint8)
    part[1, 1:3] = 1
    shape = {**labelme_shape("dog", [[5, 6], [8, 8]], "mask"), "mask": base64.b64encode(png_bytes(part)).decode()}
    labelme_file(tmp_path / "src" / "x.json", img, [shape], 12, 12, embed=True)
    import_labelme(tmp_path / "src", tmp_path / "labels.txt", tmp_path / "out")
    m = np.asarray(Image.open(tmp_path / "out" / "masks" / "x.png"))
    assert np.argwhere(m == 2).tolist() == [[7, 6], [7, 7]]


def test_bad_labelme_input_leaves_no_output(tmp_path, capsys) -> None:
    make_labelme(tmp_path)
    data = json.loads((tmp_path / "json" / "b.json").read_text())
    data["shapes"].append(labelme_shape("bird", [[1, 1], [5, 5]], "rectangle"))
    (tmp_path / "json" / "b.json").write_text(json.dumps(data))
    out = tmp_path / "ds"
    assert (
        main(
            [
                "data",
                "import",
                "labelme",
                str(tmp_path / "json"),
                "--labels",
                str(tmp_path / "labels.txt"),
                "--out",
                str(out),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "b.json: shape 1 has label 'bird', which is not in the labels file" in err[0]
    assert not out.exists() and not list(tmp_path.glob(".ds.partial-*"))  # a.json's files were not left behind
    data["shapes"] = [labelme_shape("cat", [[1, 1], [5, 5]])]  # a polygon of two points
    (tmp_path / "json" / "b.json").write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"b.json: shape 0 \(cat\): a polygon with 2 point"):
        import_labelme(tmp_path / "json", tmp_path / "labels.txt", out)
    (tmp_path / "photos" / "a.jpg").unlink()
    with pytest.raises(DataError, match=r"a.json: image .*a.jpg \(imagePath\) not found"):
        import_labelme(tmp_path / "json" / "a.json", tmp_path / "labels.txt", out)


def test_cvat_segmentation_mask_export_read_by_the_folder_dataset(tmp_path, capsys) -> None:
    masks = make_cvat(tmp_path / "export")
    ds = get_dataset("folder", tmp_path / "export", "default")
    assert ds.classes == ("background", "cat", "dog") and len(ds) == 2
    assert ds.palette[:3].tolist() == CVAT_COLOURS.tolist()
    for i, stem in enumerate(ds.stems):
        np.testing.assert_array_equal(ds[i][1].numpy(), masks[stem])
    with pytest.raises(DataError, match="no split 'train'; this export has default"):
        get_dataset("folder", tmp_path / "export", "train")
    assert main(["data", "check", str(tmp_path / "export"), "--dataset", "folder", "--split", "default"]) == 0
    assert "  1 cat" in capsys.readouterr().out
    bad = CVAT_COLOURS[masks["frame_000000"]].copy()
    bad[0, 0] = (128, 0, 0)  # VOC's aeroplane: not a colour of this export's label map
    Image.fromarray(bad).save(tmp_path / "export" / "SegmentationClass" / "frame_000000.png")
    with pytest.raises(DataError, match=r"frame_000000.png: colours \[\(128, 0, 0\)\] are not in the palette"):
        ds[0]


def test_cvat_labelmap_errors_name_the_line(tmp_path) -> None:
    make_cvat(tmp_path)
    (tmp_path / "labelmap.txt").write_text("# label:color_rgb:parts:actions\nbackground:0,0,0::\ncat:250,50::\n")
    with pytest.raises(DataError, match=r"labelmap.txt:3: expected 'name:r,g,b:parts:actions'"):
        get_dataset("folder", tmp_path, "default")
