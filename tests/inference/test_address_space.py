"""Under an address-space limit (``ulimit -v``, common on clusters and in containers), ``predict`` with ``auto``
succeeds wherever ``--engine torch`` does, with the same masks: an engine that cannot load there is probed in a
child process (which the limit ends, not the job) and left out, or falls back to PyTorch at run time."""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import fcnseg
from fcnseg.inference.decision import size_bucket
from fcnseg.runtime.checkpoint import CheckpointInfo, model_kwargs, save_checkpoint
from fcnseg.runtime.hardware import fingerprint

HAS_OV = all(importlib.util.find_spec(m) for m in ("onnx", "onnxscript", "openvino"))
LIMIT = 4 * 2**30  # ulimit -v 4194304


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))


def _run(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "FCNSEG_HOME": str(home), "FCNSEG_ENGINE": "auto", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "fcnseg", *args],
        capture_output=True,
        text=True,
        env=env,
        preexec_fn=_limited,
        timeout=1800,
    )


def _checkpoint(folder: Path, width: float) -> Path:
    torch.manual_seed(0)
    model = fcnseg.get_model("fcn8s_vgg16", num_classes=4, width=width, pad100=False)
    with torch.no_grad():
        for n in model.score_layer_names():
            getattr(model, n).weight.normal_(0, 1.0)
    info = CheckpointInfo(arch=model.arch, model_kwargs=model_kwargs(model), classes=["bg", "a", "b", "c"])
    return save_checkpoint(folder / "m", model, info)


def _photos(folder: Path, n: int, size: tuple[int, int]) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(folder / f"p{i}.png")
    return folder


def _masks(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: np.asarray(Image.open(p)) for p in sorted(folder.glob("p*.png"))}


@pytest.mark.slow
@pytest.mark.skipif(not HAS_OV, reason="needs the openvino extra")
def test_auto_with_a_cached_openvino_decision_succeeds_under_4_gib(tmp_path, monkeypatch) -> None:
    """A decision for OpenVINO kept from an unlimited run; the limited run starts on it where it loads, falls back
    to PyTorch where it does not; either way it succeeds with PyTorch's masks."""
    checkpoint = _checkpoint(tmp_path, 1 / 16)
    photos = _photos(tmp_path / "photos", 3, (60, 70))
    home = tmp_path / "home"
    torch_run = _run(
        "predict",
        "--checkpoint",
        str(checkpoint),
        str(photos),
        "--out",
        str(tmp_path / "torch"),
        "--engine",
        "torch",
        home=home,
    )
    assert torch_run.returncode == 0, torch_run.stderr[-2000:]
    monkeypatch.setenv("FCNSEG_HOME", str(home))
    root = fcnseg.Segmenter(checkpoint, device="cpu").engine.store.root
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the child runs with OMP_NUM_THREADS=1: its machine fingerprint says so
    machine = fingerprint()["id"]
    torch.set_num_threads(threads)
    root.mkdir(parents=True, exist_ok=True)
    decision = {
        "engine": "openvino-bf16",
        "bucket": size_bucket(60, 70),
        "measured_at": [60, 70],
        "seconds": {"torch": 1.0, "openvino-bf16": 1e-6},
        "build_s": {"openvino-bf16": 0.0},
    }
    (root / "decisions.json").write_text(json.dumps({f"{machine}/{size_bucket(60, 70)}": decision}))
    auto_run = _run("predict", "--checkpoint", str(checkpoint), str(photos), "--out", str(tmp_path / "auto"), home=home)
    assert auto_run.returncode == 0, auto_run.stderr[-2000:]
    want, got = _masks(tmp_path / "torch"), _masks(tmp_path / "auto")
    assert want.keys() == got.keys() and all((got[k] == want[k]).mean() > 0.99 for k in want)
    assert "Traceback" not in auto_run.stderr
    probes = json.loads((root / "probes.json").read_text())  # the cached engine was tried, in a child first
    assert any("openvino-bf16" in key for key in probes)


@pytest.mark.slow
@pytest.mark.skipif(not HAS_OV, reason="needs the openvino extra")
def test_full_size_fcn8s_under_4_gib_tunes_and_predicts_as_torch_does(tmp_path) -> None:
    """FCN-8s VGG16 at full width (0.54 GB of weights) under ``ulimit -v 4194304``: ``fcnseg tune`` completes,
    leaving out what cannot load there with its reason, and ``predict`` with auto succeeds with torch's masks."""
    checkpoint = _checkpoint(tmp_path, 1.0)
    photos = _photos(tmp_path / "photos", 2, (334, 500))
    home = tmp_path / "home"
    torch_run = _run(
        "predict",
        "--checkpoint",
        str(checkpoint),
        str(photos),
        "--out",
        str(tmp_path / "torch"),
        "--engine",
        "torch",
        home=home,
    )
    if torch_run.returncode != 0:  # this torch build's own address space leaves no room for 0.54 GB of weights
        assert torch_run.returncode == 2 and "Cannot allocate memory" in torch_run.stderr, torch_run.stderr[-2000:]
        auto_run = _run(
            "predict", "--checkpoint", str(checkpoint), str(photos), "--out", str(tmp_path / "a"), home=home
        )
        assert auto_run.returncode == 2 and len(auto_run.stderr.strip().splitlines()) == 1, auto_run.stderr[-2000:]
        pytest.skip("--engine torch itself cannot open a full-size FCN-8s under 4 GiB here (auto fails as cleanly)")
    tune = _run(
        "tune",
        "--checkpoint",
        str(checkpoint),
        "--sizes",
        "500x334",
        "--engines",
        "openvino-bf16",
        "openvino",
        home=home,
    )
    assert tune.returncode == 0 and "500x334:" in tune.stdout, tune.stderr[-2000:]
    auto_run = _run("predict", "--checkpoint", str(checkpoint), str(photos), "--out", str(tmp_path / "auto"), home=home)
    assert auto_run.returncode == 0, auto_run.stderr[-2000:]
    want, got = _masks(tmp_path / "torch"), _masks(tmp_path / "auto")
    assert all((got[k] == want[k]).mean() > 0.995 for k in want)
