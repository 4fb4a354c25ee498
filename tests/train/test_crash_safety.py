"""SIGKILL during training and during a checkpoint write: resume finishes with the same weights."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fcnseg.runtime.checkpoint import load_checkpoint

SET = [
    "model.name=fcn8s_resnet18",
    "model.width=0.125",
    "data.options={n: 32, size: 32}",
    "data.val_options={n: 2}",
    "data.preprocessing=imagenet",
    "data.batch_size=2",
    "train.lr=0.02",
    "train.momentum=0.9",
    "train.normalize=true",
    "train.max_iter=30",
    "train.log_every=1",
    "train.eval_every=1000",
    "train.checkpoint_every=4",
]

SLOW_WRITE = """
import contextlib, sys, time
import fcnseg.runtime.checkpoint as ck
from fcnseg.cli.main import main
real, calls = ck.atomic_write, []
@contextlib.contextmanager
def paused(path, mode="wb"):
    with real(path, mode) as f:
        yield f
        if str(path).endswith("last.safetensors"):
            calls.append(path)
            if len(calls) == 4:  # the 4th weights write: bytes written, not yet renamed into place
                f.flush()
                print("MIDWRITE", flush=True)
                time.sleep(120)
ck.atomic_write = paused
sys.exit(main(sys.argv[1:]))
"""

PAUSED_AFTER_13 = """
import sys, time
import fcnseg.train.trainer as trainer
from fcnseg.cli.main import main
real = trainer.train_step
def paused(run, step, **kw):
    if step == 13:  # steps 1-13 done and logged, step 12's checkpoint written, step 16's not yet
        print("PAUSED", flush=True)
        time.sleep(120)
    return real(run, step, **kw)
trainer.train_step = paused
sys.exit(main(sys.argv[1:]))
"""


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _cmd(config: Path, out: Path, *extra: str, prefix: list[str] | None = None) -> list[str]:
    return [
        *(prefix or [sys.executable, "-m", "fcnseg"]),
        "train",
        str(config),
        "--out",
        str(out),
        "--quiet",
        "--set",
        *SET,
        *extra,
    ]


def _weights(run: Path) -> dict[str, torch.Tensor]:
    model, info = load_checkpoint(run / "checkpoints" / "last.safetensors")
    assert info.step == 30
    return model.state_dict()


def _all_checkpoints_readable(run: Path) -> None:
    for path in (run / "checkpoints").glob("*.safetensors"):
        load_checkpoint(path)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict[str, torch.Tensor]:
    root = tmp_path_factory.mktemp("full")
    (root / "c.yaml").write_text("model: {name: fcn8s_resnet18}\n")
    subprocess.run(_cmd(root / "c.yaml", root / "run"), env=_env(), check=True, capture_output=True, timeout=600)
    return _weights(root / "run")


def _resume(config: Path, run: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fcnseg", "train", "--resume", str(run), "--quiet", "--set", "train.max_iter=30"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]


def _killed_at_hook(tmp_path: Path, script: str, marker: str) -> Path:
    """Train under ``script``, whose hook prints ``marker`` and holds the run; SIGKILL it there (no race)."""
    (tmp_path / "c.yaml").write_text("model: {name: fcn8s_resnet18}\n")
    run = tmp_path / "run"
    proc = subprocess.Popen(
        _cmd(tmp_path / "c.yaml", run, prefix=[sys.executable, "-c", script]),
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == marker
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    return run


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_gives_identical_weights(tmp_path, uninterrupted) -> None:
    run = _killed_at_hook(tmp_path, PAUSED_AFTER_13, "PAUSED")
    _, info = load_checkpoint(run / "checkpoints" / "last.safetensors")
    assert info.step == 12  # killed between checkpoints: resume redoes steps 13-30
    _all_checkpoints_readable(run)
    _resume(tmp_path / "c.yaml", run)
    for key, value in _weights(run).items():
        assert torch.equal(value, uninterrupted[key]), key


@pytest.mark.slow
def test_sigkill_during_a_checkpoint_write_then_resume(tmp_path, uninterrupted) -> None:
    run = _killed_at_hook(tmp_path, SLOW_WRITE, "MIDWRITE")
    ckpts = run / "checkpoints"
    assert list(ckpts.glob(".last.safetensors.*.tmp")), "the kill should have left the unfinished temp file"
    _, info = load_checkpoint(ckpts / "last.safetensors")  # the previous checkpoint is intact
    assert info.step == 12
    assert {p.name for p in ckpts.glob("last.state-*.pt")} == {"last.state-00000012.pt", "last.state-00000016.pt"}
    _resume(tmp_path / "c.yaml", run)
    assert not list(ckpts.glob(".*.tmp"))
    assert [p.name for p in ckpts.glob("last.state-*.pt")] == ["last.state-00000030.pt"]
    for key, value in _weights(run).items():
        assert torch.equal(value, uninterrupted[key]), key
