"""Restarts and failures of distributed runs: --resume auto, the global batch across world sizes, one rank's
error stopping every rank with its message."""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys

import pytest
import torch

from fcnseg.cli.main import main
from fcnseg.errors import ConfigError
from fcnseg.runtime.checkpoint import load_training_state
from fcnseg.train.resume import keep_global_batch
from fcnseg.train.trainer import fit
from tests.helpers import TINY, tiny


def _losses(run_dir) -> dict[int, float]:
    with (run_dir / "log.csv").open() as f:
        return {int(r["step"]): float(r["loss"]) for r in csv.DictReader(f) if r["loss"]}


@pytest.mark.slow
def test_resume_auto_starts_a_new_run_then_resumes_it(tmp_path, capsys) -> None:
    config = tmp_path / "base.yaml"
    config.write_text("model:\n  name: fcn8s_resnet18\n")
    run = tmp_path / "run"
    args = ["train", str(config), "--out", str(run), "--quiet", "--resume", "auto", "--device", "cpu", "--set", *TINY]
    assert main([*args, "train.max_iter=3"]) == 0  # no checkpoint yet: starts
    assert load_training_state(run / "checkpoints" / "last").get("step") == 3
    assert main([*args, "train.max_iter=6"]) == 0  # a checkpoint: resumes from step 3
    assert "mean IU" in capsys.readouterr().out
    assert set(_losses(run)) == {2, 3, 4, 6}  # steps 1…3, then 4…6 continued (a restart would log 2, 4, 6 again)
    assert load_training_state(run / "checkpoints" / "last").get("step") == 6


def test_training_state_records_world_and_global_batch(tmp_path) -> None:
    fit(tiny("train.max_iter=3", "train.iter_size=2"), tmp_path, progress=False)
    state = load_training_state(tmp_path / "checkpoints" / "last")
    assert state["world"] == 1 and state["global_batch"] == 2 * 1 * 2


def test_a_new_world_size_keeps_the_global_batch_or_is_refused() -> None:
    cfg = tiny("data.batch_size=4")
    state = {"world": 1, "global_batch": 4}
    assert keep_global_batch(cfg, state, 2, "ckpt").data.batch_size == 2
    assert keep_global_batch(cfg, state, 4, "ckpt").data.batch_size == 1
    assert keep_global_batch(cfg, state, 1, "ckpt") is cfg
    assert keep_global_batch(cfg, {}, 3, "ckpt") is cfg  # a state from before the world was recorded
    with pytest.raises(
        ConfigError, match=r"ckpt: trained with a global batch of 4 on 1 process.*world size of 1, 2, 4"
    ):
        keep_global_batch(cfg, state, 3, "ckpt")
    two = tiny("data.batch_size=4", "train.iter_size=2")
    with pytest.raises(ConfigError, match=r"train\.iter_size 2 cannot make 8"):
        keep_global_batch(two, {"world": 1, "global_batch": 8}, 8, "ckpt")


def _torchrun(nproc: int, run_dir, extra: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    config = run_dir.parent / "base.yaml"
    config.write_text("model:\n  name: fcn8s_vgg16\n")
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    cmd = [
        *launcher,
        "-m",
        "fcnseg",
        "train",
        str(config),
        "--quiet",
        "--out",
        str(run_dir),
        "--resume",
        "auto",
        "--set",
        *TINY,
        "model.name=fcn8s_vgg16",
        "model.dropout=0.0",
        "train.lr=0.01",
        *extra,
    ]
    return subprocess.run(
        cmd if nproc > 1 else [sys.executable, *cmd[cmd.index("-m", 1) :]],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_resume_on_two_processes_keeps_the_global_batch_of_one(tmp_path) -> None:
    """Stop a 1-process run (batch 4) at step 2, resume it on 2 processes: batch 2 each, the same losses."""
    one = _torchrun(1, tmp_path / "a" / "run", ["data.batch_size=4", "train.max_iter=4"])
    assert one.returncode == 0, one.stderr[-2000:]
    part = _torchrun(1, tmp_path / "b" / "run", ["data.batch_size=4", "train.max_iter=2"])
    assert part.returncode == 0, part.stderr[-2000:]
    two = _torchrun(2, tmp_path / "b" / "run", ["data.batch_size=4", "train.max_iter=4"])
    assert two.returncode == 0, two.stderr[-2000:]
    assert "data.batch_size 4 → 2 keeps the global batch of 4" in two.stderr
    full, resumed = _losses(tmp_path / "a" / "run"), _losses(tmp_path / "b" / "run")
    torch.testing.assert_close(
        torch.tensor([resumed[s] for s in (2, 4)]), torch.tensor([full[s] for s in (2, 4)]), rtol=1e-4, atol=1e-6
    )
    assert load_training_state(tmp_path / "b" / "run" / "checkpoints" / "last")["world"] == 2


_RANK = """
import os, sys, time, torch, torch.distributed as dist
from fcnseg.train.rank_guard import RankGuard
from fcnseg.errors import DataError
from fcnseg.cli.main import one_line
dist.init_process_group("gloo")
rank = dist.get_rank()
try:
    with RankGuard(rank, 2, poll_s=0.1, linger_s=1.0):
        if rank == 1:
            raise DataError("data/broken.png: not an image")
        dist.all_reduce(torch.ones(1))  # rank 1 never joins: without the guard this waits for the timeout
        time.sleep(3600)
except Exception as e:
    print(f"rank {rank}: {one_line(e)}", file=sys.stderr)
    sys.exit(2)
"""


@pytest.mark.slow
def test_an_error_on_one_rank_stops_every_rank_with_its_message(tmp_path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = {
        **os.environ,
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
        "WORLD_SIZE": "2",
        "OMP_NUM_THREADS": "1",
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _RANK],
            env={**base, "RANK": str(r), "LOCAL_RANK": str(r)},
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in range(2)
    ]
    # without the guard rank 0 would sleep for an hour after the collective: a timeout here fails the test
    errs = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [2, 2]
    assert "data/broken.png: not an image" in errs[1]
    assert "stopped: rank 1 failed: data/broken.png: not an image" in errs[0]
