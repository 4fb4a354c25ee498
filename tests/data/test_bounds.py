"""Upper bounds of coarse output (Appendix A): exact on hand-made maps, ordered by stride, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fcnseg.cli.main import main
from fcnseg.data import SyntheticShapes
from fcnseg.data.bounds import coarse_labels, upper_bounds
from fcnseg.errors import DataError


def test_a_map_aligned_with_the_grid_survives_and_bilinear_rounds_corners() -> None:
    label = np.zeros((16, 16), np.int64)
    label[:, 8:] = 1  # a straight edge on the cell boundary
    for method in ("bilinear", "nearest"):
        assert (coarse_labels(label, 8, 2, method=method) == label).all()
    assert upper_bounds([label], 2, (8,))[8]["mean_iu"] == 1.0
    label[8:, 8:] = 0  # one 8×8 cell of class 1: nearest keeps it; bilinear upsampling rounds its inner corner
    assert (coarse_labels(label, 8, 2, method="nearest") == label).all()
    rounded = coarse_labels(label, 8, 2, method="bilinear")
    assert rounded[0, 15] == 1 and rounded[7, 8] == 0 and (rounded != label).sum() < 16


def test_detail_finer_than_the_stride_is_lost_and_counted() -> None:
    label = np.zeros((32, 32), np.int64)
    label[5:7, 5:7] = 1  # a 2×2 object inside one 32×32 cell: the majority is background
    coarse = coarse_labels(label, 32, 2, method="nearest")
    assert (coarse == 0).all()
    m = upper_bounds([label], 2, (32,), method="nearest")[32]
    assert m["iu"][1] == 0.0 and m["pixel_accuracy"] == pytest.approx(1 - 4 / 1024)


def test_void_stays_out_and_a_void_block_stays_void() -> None:
    label = np.full((8, 16), 255, np.int64)
    label[:, 8:] = 1
    assert (coarse_labels(label, 8, 2, method="nearest")[:, :8] == 255).all()
    assert upper_bounds([label], 2, (8,))[8]["pixel_accuracy"] == 1.0


def test_finer_strides_bound_higher_on_synthetic_scenes() -> None:
    ds = SyntheticShapes(12, 96, "val")
    b = upper_bounds((ds.load(i)[1] for i in range(len(ds))), ds.num_classes, (32, 16, 8, 1))
    assert b[32]["mean_iu"] < b[16]["mean_iu"] < b[8]["mean_iu"] < b[1]["mean_iu"] == 1.0


def test_bad_labels_and_strides_are_one_line_errors() -> None:
    with pytest.raises(DataError, match=r"outside 0\.\.1"):
        upper_bounds([np.full((4, 4), 7)], 2, (2,))
    with pytest.raises(DataError, match="positive"):
        upper_bounds([np.zeros((4, 4))], 2, (0,))


def test_data_bound_prints_and_writes_json(tmp_path, capsys) -> None:
    out = tmp_path / "b.json"
    argv = [
        "data",
        "bound",
        str(tmp_path),
        "--dataset",
        "synthetic",
        "-o",
        "n=6",
        "-o",
        "size=64",
        "--strides",
        "32",
        "8",
        "--json",
        str(out),
    ]
    assert main(argv) == 0
    assert "mean IU" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert set(data["bounds"]) == {"32", "8"} and data["bounds"]["8"]["mean_iu"] > data["bounds"]["32"]["mean_iu"]
