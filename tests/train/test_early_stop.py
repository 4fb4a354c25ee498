"""train.early_stop: a run that plateaus stops, keeps its best checkpoint, says why; a resume continues the count."""

from __future__ import annotations

import csv
import json

import pytest

from fcnseg.config import EarlyStop
from fcnseg.errors import CheckpointError
from fcnseg.runtime.checkpoint import read_info
from fcnseg.train.early_stop import Plateau
from fcnseg.train.trainer import fit
from tests.helpers import tiny


def _evals(run_dir) -> list[int]:
    with (run_dir / "log.csv").open() as f:
        return [int(r["step"]) for r in csv.DictReader(f) if r["mean_iu"]]


def test_plateau_counts_evaluations_without_a_gain() -> None:
    p = Plateau(EarlyStop(patience=2, min_delta=0.01))
    assert not p.update(0.50, 10)  # first: a gain
    assert not p.update(0.505, 20)  # +0.005 < min_delta: no gain (stale 1)
    assert p.best == 0.50 and p.stale == 1
    assert not p.update(0.52, 30)  # +0.02: a gain, the count resets
    assert p.best_step == 30 and p.stale == 0
    assert not p.update(0.40, 40)
    assert p.update(0.52, 50)  # two in a row without a gain: stop
    assert p.stopped_at == 50 and "step 50" in p.reason(100) and "best 0.5200 at step 30" in p.reason(100)
    assert Plateau(None).update(0.0, 1) is False  # no rule: never stops


def test_no_run_stops_on_its_starting_plateau_before_min_steps() -> None:
    """The paper experiment's class-balancing and jitter runs stopped at step 1750 with every pixel background
    (mean IU 0.0996 from step 250 on): flat, but not converged. ``min_steps`` keeps such a run going."""
    p = Plateau(EarlyStop(patience=2, min_delta=0.005, min_steps=1000))
    flat = [p.update(0.0996, step) for step in (250, 500, 750)]
    assert flat == [False, False, False] and p.stale == 2  # would have stopped at 750 without min_steps
    assert not p.update(0.25, 1000)  # it leaves the plateau: a gain
    assert not p.update(0.25, 1250) and p.update(0.25, 1500)  # a real plateau after min_steps stops it
    assert p.stopped_at == 1500 and p.best == 0.25
    early = Plateau(EarlyStop(patience=2, min_steps=1000))  # a run stopped at 750 before the floor was added
    early.restore({"best": 0.0996, "best_step": 250, "stale": 2, "stopped_at": 750}, "state")
    assert early.stopped_at is None and not early.update(0.0996, 1000 - 250)  # it goes on from there


def test_plateau_state_round_trips_and_malformed_state_is_refused() -> None:
    p = Plateau(EarlyStop(patience=3))
    p.update(0.3, 5)
    p.update(0.2, 10)
    q = Plateau(EarlyStop(patience=3))
    q.restore(p.state(), "ckpt")
    assert (q.best, q.best_step, q.stale, q.stopped_at) == (0.3, 5, 1, None)
    for bad in (
        {"best": "x", "best_step": 0, "stale": 0},
        {"best_step": -1, "stale": 0},
        [1, 2],
        {"best": float("nan"), "best_step": 0, "stale": 0},
    ):
        with pytest.raises(CheckpointError, match="early_stop"):
            Plateau(EarlyStop()).restore(bad, "ckpt")


def test_a_run_that_plateaus_stops_and_keeps_its_best_checkpoint(tmp_path) -> None:
    # lr 0: the validation score never changes, so only the first evaluation is a gain
    run = tmp_path / "run"
    cfg = tiny(
        "train.lr=0",
        "train.max_iter=40",
        "train.eval_every=2",
        "train.checkpoint_every=40",
        "train.early_stop={patience: 2}",
    )
    fit(cfg, run, progress=False)
    assert _evals(run) == [2, 4, 6]  # gain at 2, stale at 4 and 6: stopped at 6, not 40
    summary = json.loads((run / "summary.json").read_text())
    assert summary["end"] == "early_stop" and summary["steps"] == 6 and summary["max_iter"] == 40
    assert "stopped early at step 6" in summary["reason"]
    assert read_info(run / "checkpoints" / "best.safetensors").step == 2  # the best, kept
    assert read_info(run / "checkpoints" / "last.safetensors").step == 6  # where it stopped, resumable
    assert (run / "metrics.json").is_file()


def test_a_run_without_early_stop_says_it_ran_its_steps(tmp_path) -> None:
    fit(tiny(), tmp_path / "run", progress=False)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["end"] == "max_iter" and summary["steps"] == 6 and summary["early_stop"] is None


def test_resume_continues_the_patience_count(tmp_path) -> None:
    run = tmp_path / "run"
    rule = ("train.lr=0", "train.eval_every=1", "train.checkpoint_every=1", "train.early_stop={patience: 3}")
    fit(tiny(*rule, "train.max_iter=2"), run, progress=False)  # gain at 1, stale 1 at 2: still going
    assert json.loads((run / "summary.json").read_text())["end"] == "max_iter"
    fit(tiny(*rule, "train.max_iter=20"), run, resume=True, progress=False)
    # the count went on from 1: stale 2 at step 3, 3 at step 4 (a fresh count would have stopped at 5)
    assert _evals(run) == [1, 2, 3, 4]
    assert json.loads((run / "summary.json").read_text())["steps"] == 4
    # resuming a run that already stopped trains nothing more
    fit(tiny(*rule, "train.max_iter=20"), run, resume=True, progress=False)
    assert read_info(run / "checkpoints" / "last.safetensors").step == 4


def test_a_run_stopped_before_a_floor_added_since_trains_on_from_its_stop(tmp_path) -> None:
    run = tmp_path / "run"
    rule = ("train.lr=0", "train.eval_every=1", "train.checkpoint_every=1", "train.max_iter=20")
    fit(tiny(*rule, "train.early_stop={patience: 2}"), run, progress=False)  # lr 0: flat, stops at step 3
    assert json.loads((run / "summary.json").read_text())["steps"] == 3
    fit(tiny(*rule, "train.early_stop={patience: 2, min_steps: 6}"), run, resume=True, progress=False)
    assert _evals(run) == [1, 2, 3, 4, 5, 6]  # went on from step 3 and stopped at the floor
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 6 and summary["end"] == "early_stop"
