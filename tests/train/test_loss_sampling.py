"""train.loss_sampling: final-layer cells dropped with probability 1 − p, reproducibly, and the run learns."""

from __future__ import annotations

import csv

import pytest
import torch

from fcnseg.config import load_config
from fcnseg.errors import ConfigError
from fcnseg.train.loss_sampling import CELL, drop_cells, sampling_generator
from fcnseg.train.trainer import fit
from tests.helpers import tiny


def test_cells_are_dropped_whole_at_the_asked_rate() -> None:
    y = torch.randint(0, 5, (8, 256, 200))
    out = drop_cells(y, 0.25, sampling_generator(1, 7, 0, 0))
    dropped = out == 255
    kept = (~dropped).float().mean().item()
    assert 0.17 < kept < 0.33
    cells = dropped[:, ::CELL, ::CELL]  # every 32 × 32 block is all dropped or all kept
    assert (dropped == cells.repeat_interleave(CELL, 1).repeat_interleave(CELL, 2)[:, :256, :200]).all()
    assert (out[~dropped] == y[~dropped]).all()
    same = drop_cells(y, 0.25, sampling_generator(1, 7, 0, 0))
    other = drop_cells(y, 0.25, sampling_generator(1, 8, 0, 0))
    assert torch.equal(out, same) and not torch.equal(out, other)
    assert drop_cells(y, 1.0, sampling_generator(0, 0, 0, 0)) is y


def test_heads_share_one_mask() -> None:
    y = {"sem": torch.zeros(2, 64, 64, dtype=torch.long), "geo": torch.ones(2, 64, 64, dtype=torch.long)}
    out = drop_cells(y, 0.5, sampling_generator(0, 3, 0, 0))
    assert torch.equal(out["sem"] == 255, out["geo"] == 255)


def test_a_sampled_run_is_reproducible_and_differs_from_whole_images(tmp_path) -> None:
    def losses(name: str, p: float) -> list[float]:
        fit(tiny(f"train.loss_sampling={p}", "train.max_iter=4", "train.log_every=1"), tmp_path / name, progress=False)
        with (tmp_path / name / "log.csv").open() as f:
            return [float(r["loss"]) for r in csv.DictReader(f) if r["loss"]]

    a, b, whole = losses("a", 0.5), losses("b", 0.5), losses("whole", 1.0)
    assert a == b and a != whole and all(v == v for v in a)


def test_the_probability_is_checked_at_load() -> None:
    for bad in ("0", "1.5"):
        with pytest.raises(ConfigError, match=r"train\.loss_sampling"):
            load_config(None, [f"train.loss_sampling={bad}"])
