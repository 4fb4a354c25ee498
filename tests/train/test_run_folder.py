"""Issue 30 through ``fcnseg train``: a run never silently replaces another run or the user's files, and a full disk
is one line naming the file with nothing half-written. Each case failed before its fix."""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import fcnseg
from fcnseg.cli.main import main
from tests.badinput import no_traceback
from tests.helpers import TINY

FAST = [*TINY, "data.options={n: 8, size: 32}", "data.val_options={n: 2}", "train.max_iter=2", "train.eval_every=2"]
FAST += ["train.checkpoint_every=2", "eval.grid_images=1"]


def _train(tmp_path: Path, out: Path, *extra: str, sets: tuple[str, ...] = ()) -> list[str]:
    config = tmp_path / "tiny.yaml"
    if not config.exists():
        config.write_text("{}\n")
    return ["train", str(config), "--out", str(out), "--quiet", *extra, "--set", *FAST, *sets]


def _refused(capsys, code: int, message: str) -> None:
    # the progress lines of an earlier run in this test (train --quiet still says when it starts and ends) aside
    err = "\n".join(line for line in capsys.readouterr().err.splitlines() if not line.startswith("fcnseg: "))
    no_traceback(err, code)
    assert code == 2 and message in err, err


def test_a_finished_run_is_not_replaced_without_resume_or_overwrite(tmp_path, capsys) -> None:
    run = tmp_path / "run"
    assert main(_train(tmp_path, run)) == 0
    best = (run / "checkpoints" / "best.safetensors").read_bytes()
    _refused(capsys, main(_train(tmp_path, run)), "holds a run already")
    assert (run / "checkpoints" / "best.safetensors").read_bytes() == best
    (run / "notes.txt").write_text("the user's notes on this run")
    assert main(_train(tmp_path, run, "--overwrite")) == 0  # said so: started again, its earlier outputs gone
    rows = (run / "log.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]].count("2") == 2  # one run's rows (a loss row, an eval row at step 2)
    assert (run / "notes.txt").read_text() == "the user's notes on this run"


def test_another_runs_config_or_the_users_files_are_not_written_over(tmp_path, capsys) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "config.yaml").write_text("# another run's config\ntrain: {lr: 0.5}\n")
    _refused(capsys, main(_train(tmp_path, theirs)), "holds a run already (its config.yaml)")
    assert (theirs / "config.yaml").read_text().startswith("# another run's config")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "thesis.tex").write_text("\\begin{document}")
    _refused(capsys, main(_train(tmp_path, tmp_path / "docs")), "e.g. thesis.tex")


def test_the_run_folder_is_never_the_data_or_holds_the_config(tmp_path, capsys) -> None:
    data = tmp_path / "data"
    data.mkdir()
    code = main(_train(tmp_path, data / "run", sets=("data.root=" + str(data),)))
    _refused(capsys, code, "inside the input folder")
    run = tmp_path / "run"
    assert main(_train(tmp_path, run)) == 0
    capsys.readouterr()
    code = main(["train", str(run / "config.yaml"), "--out", str(run), "--quiet", "--overwrite"])
    _refused(capsys, code, "the run folder's own config; --resume")


def test_resume_auto_restarts_its_own_run_stopped_before_a_checkpoint(tmp_path, capsys) -> None:
    run = tmp_path / "run"
    assert main(_train(tmp_path, run)) == 0
    for f in (run / "checkpoints").iterdir():  # as if killed before its first checkpoint
        f.unlink()
    assert main(_train(tmp_path, run, "--resume", "auto")) == 0
    assert (run / "checkpoints" / "last.safetensors").is_file()


def _no_bigger_than(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead of killing the child
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.slow
def test_a_full_disk_during_a_checkpoint_is_one_line_naming_the_file(tmp_path) -> None:
    """The training state (AdamW: twice the weights) does not fit; torch.save used to raise its own
    ``inline_container.cc`` error, a traceback."""
    run = tmp_path / "run"
    argv = _train(tmp_path, run, sets=("train.optimizer=adamw", "train.lr=0.001"))
    src = str(Path(fcnseg.__file__).resolve().parents[1])  # the fcnseg under test
    child = subprocess.run(
        [sys.executable, "-m", "fcnseg", *argv],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": src, "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
        preexec_fn=_no_bigger_than(400_000),  # the weights (276 kB) fit, the state (550 kB) does not
        timeout=600,
    )
    err = "\n".join(line for line in child.stderr.strip().splitlines() if not line.startswith("fcnseg: "))
    assert child.returncode == 2 and "Traceback" not in child.stderr and len(err.splitlines()) == 1, child.stderr
    assert "last.state-00000002.pt: File too large" in err, err
    left = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert left == ["best.safetensors"], left  # whole files only: no temp file, no half state
    meta = json.loads((run / ".fcnseg-written.jsonl").read_text().splitlines()[0])
    assert meta == {"owner": "train"}
