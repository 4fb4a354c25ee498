"""``fcnseg data check`` reports a dataset's problems by file."""

from __future__ import annotations

import numpy as np
import pytest

import fcnseg
from fcnseg.cli.main import main


def test_dataset_problems_are_reported_by_data_check(tmp_path, capsys) -> None:
    from tests.data.fixtures import jpeg, palette_png

    for i, (h, w) in enumerate([(8, 10), (8, 10), (8, 10)]):
        jpeg(tmp_path / "images" / f"{i}.jpg", h, w, seed=i)
    palette_png(tmp_path / "masks" / "0.png", np.zeros((8, 10), np.uint8))
    palette_png(tmp_path / "masks" / "1.png", np.zeros((5, 5), np.uint8))  # wrong size
    bad = np.zeros((8, 10), np.uint8)
    bad[0, 0] = 9  # label ≥ the class count
    palette_png(tmp_path / "masks" / "2.png", bad)
    code = main(["data", "check", str(tmp_path), "--dataset", "folder"])
    out = capsys.readouterr().out
    assert code == 1
    assert "1.png: mask is 5×5 but its image is 10×8" in out
    ds = fcnseg.data.SegmentationFolder(tmp_path / "images", tmp_path / "masks", classes=["bg", "a", "b"])
    with pytest.raises(fcnseg.errors.DataError, match=r"2\.png: labels \[9\] are outside 0\.\.2"):
        ds[2]
