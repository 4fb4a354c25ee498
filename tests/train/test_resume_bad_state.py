"""Resuming from a training state that does not fit: another optimizer, a global batch of 0 or of 10^15 (the
list of world sizes that would fit it once counted to 10^15): one line naming the key, exit 2."""

from __future__ import annotations

import pytest
import torch

from fcnseg.cli.main import main
from fcnseg.runtime.checkpoint import load_training_state, state_file
from tests.badinput import no_traceback
from tests.helpers import TINY


def _train(folder, optimizer: str):
    (folder / "c.yaml").write_text("train: {}\n")
    args = ["train", str(folder / "c.yaml"), "--out", str(folder / "run"), "--quiet", "--device", "cpu", "--set"]
    sets = [*TINY, "train.max_iter=3", "train.checkpoint_every=3", "data.workers=0", f"train.optimizer={optimizer}"]
    assert main([*args, *sets]) == 0
    return folder / "run"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A 3-step SGD run with its last checkpoint at step 3."""
    return _train(tmp_path_factory.mktemp("resume"), "sgd")


def _resume(run, *sets: str) -> list[str]:
    return ["train", "--resume", str(run), "--quiet", "--device", "cpu", "--set", "train.max_iter=5", *sets]


def test_resume_with_another_optimizer_is_refused(run, tmp_path, capsys) -> None:
    """SGD → AdamW was an unclear "does not fit this optimizer ('step')"; AdamW → SGD a KeyError traceback."""
    code = main(_resume(run, "train.optimizer=adamw"))
    err = capsys.readouterr().err
    no_traceback(err, code)
    assert code == 2 and "train.optimizer: adamw, but" in err and "was trained with sgd" in err, err
    adamw = _train(tmp_path, "adamw")
    capsys.readouterr()
    code = main(_resume(adamw, "train.optimizer=sgd"))
    err = capsys.readouterr().err
    no_traceback(err, code)
    assert code == 2 and "train.optimizer: sgd, but" in err and "was trained with adamw" in err, err


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"world": 2, "global_batch": 0}, "malformed training state: global_batch 0"),
        ({"world": 2, "global_batch": 10**15}, "malformed training state: global_batch 1000000000000000"),
        ({"world": 0, "global_batch": 2}, "malformed training state: world 0"),
        ({"world": True, "global_batch": 2}, "malformed training state: world True"),
        ({"world": 2, "global_batch": "2"}, "malformed training state: global_batch '2'"),
    ],
)
def test_resume_with_a_malformed_batch_record_is_refused(run, tmp_path, capsys, changes, words) -> None:
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    state = load_training_state(copy / "checkpoints" / "last")
    state.update(changes)
    torch.save(state, state_file(copy / "checkpoints" / "last", state["step"]))
    code = main(_resume(copy))
    err = capsys.readouterr().err
    no_traceback(err, code)
    assert code == 2 and words in err, err
