"""log.csv's train_s column: training seconds only, the wall-time axis of the paper's Fig. 5."""

from __future__ import annotations

import csv
import itertools

from fcnseg.train.trainer import fit
from tests.helpers import tiny


def test_train_s_grows_with_training_and_leaves_evaluation_out(tmp_path) -> None:
    fit(tiny("train.max_iter=6", "train.log_every=1", "train.eval_every=3"), tmp_path / "run", progress=False)
    with (tmp_path / "run" / "log.csv").open() as f:
        rows = list(csv.DictReader(f))
    train = [float(r["train_s"]) for r in rows if r["loss"]]
    evals = [(int(r["step"]), float(r["train_s"])) for r in rows if r["mean_iu"]]
    assert len(train) == 6 and all(b > a > 0 for a, b in itertools.pairwise(train))
    by_step = {int(r["step"]): float(r["train_s"]) for r in rows if r["loss"]}
    assert [s for s, _ in evals] == [3, 6]
    assert all(t == by_step[s] for s, t in evals)  # evaluation adds nothing to the clock


def test_a_resumed_run_goes_on_from_the_training_seconds_it_had(tmp_path) -> None:
    """The paper runs train in pieces across sessions: their seconds-to-best must count every piece."""
    keys = ("train.log_every=1", "train.eval_every=100", "train.checkpoint_every=2")
    fit(tiny("train.max_iter=2", *keys), tmp_path / "run", progress=False)
    fit(tiny("train.max_iter=4", *keys), tmp_path / "run", resume=True, progress=False)
    with (tmp_path / "run" / "log.csv").open() as f:
        train = {int(r["step"]): float(r["train_s"]) for r in csv.DictReader(f) if r["loss"]}
    assert sorted(train) == [1, 2, 3, 4]
    assert train[4] > train[3] > train[2] > train[1] > 0  # step 3 starts from step 2's count, not from 0
