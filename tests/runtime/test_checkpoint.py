"""Checkpoints: self-describing round trip, atomic writes, untrusted files refused."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

import fcnseg
from fcnseg.errors import CheckpointError
from fcnseg.io import atomic_write
from fcnseg.runtime.checkpoint import (
    CheckpointInfo,
    load_checkpoint,
    load_state_dict_file,
    load_training_state,
    save_checkpoint,
)


def _info(model) -> CheckpointInfo:
    from fcnseg.runtime.checkpoint import model_kwargs

    n = model.num_classes if not model.multi_head else 3
    classes = [f"c{i}" for i in range(n)]
    return CheckpointInfo(arch=model.arch, model_kwargs=model_kwargs(model), classes=classes, step=7)


@pytest.mark.parametrize(
    "kwargs",
    [{"num_classes": 3}, {"heads": {"sem": 4, "geo": 3}}, {"streams": {"color": 3, "hha": 3}, "num_classes": 5}],
)
def test_round_trip_rebuilds_the_same_model(tmp_path, kwargs) -> None:
    model = fcnseg.get_model("fcn16s_vgg16", width=1 / 16, **kwargs).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.02)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    save_checkpoint(tmp_path / "last", model, _info(model), optimizer=opt, rng_state=torch.get_rng_state())
    clone, info = load_checkpoint(tmp_path / "last.safetensors")
    assert info.step == 7 and info.classes == _info(model).classes and clone.arch == "fcn16s_vgg16"
    x = torch.randn(1, model.in_channels, 30, 34)
    a, b = model(x), clone.eval()(x)
    if isinstance(a, dict):
        for k in a:
            assert torch.equal(a[k], b[k])
    else:
        assert torch.equal(a, b)
    state = load_training_state(tmp_path / "last")
    assert state["step"] == 7 and "optimizer" in state


def test_pickle_that_would_run_code_is_refused(tmp_path) -> None:
    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"conv1_1.weight": Evil()}))
    with pytest.raises(CheckpointError, match=r"evil\.pt: cannot load weights safely"):
        load_state_dict_file(path)
    (tmp_path / "evil.state-00000001.pt").write_bytes(pickle.dumps({"step": Evil()}))
    with pytest.raises(CheckpointError, match="cannot load training state safely"):
        load_training_state(tmp_path / "evil")
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("content", [b"", b"garbage" * 10, b"\x08\x00\x00\x00\x00\x00\x00\x00{}"])
def test_corrupt_or_foreign_files(tmp_path, content: bytes) -> None:
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=r"bad\.safetensors"):
        load_checkpoint(path)


def test_checkpoint_of_another_architecture_is_a_clear_error(tmp_path) -> None:
    from fcnseg.runtime.checkpoint import load_into

    m32 = fcnseg.get_model("fcn32s_vgg16", width=1 / 16)
    save_checkpoint(tmp_path / "m", m32, _info(m32))
    m8 = fcnseg.get_model("fcn8s_vgg16", width=1 / 16, num_classes=3)
    with pytest.raises(CheckpointError, match=r"does not fit fcn8s_vgg16.*missing: score_pool3"):
        load_into(m8, load_state_dict_file(tmp_path / "m.safetensors"), tmp_path / "m.safetensors")
    other_k = fcnseg.get_model("fcn32s_vgg16", width=1 / 16, num_classes=5)
    with pytest.raises(CheckpointError, match=r"shape mismatch: score_fr\.weight"):
        load_into(other_k, load_state_dict_file(tmp_path / "m.safetensors"), "m")


def test_atomic_write_leaves_nothing_on_failure(tmp_path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as f:
            f.write(b"half")
            raise RuntimeError("crash")
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["out.bin"]


def test_atomic_write_gives_the_permissions_open_would(tmp_path) -> None:
    """Not mkstemp's owner-only 0o600: a written prediction or checkpoint is readable as a plain file is."""
    umask = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "out.json", "w") as f:
            f.write("{}")
    finally:
        os.umask(umask)
    assert (tmp_path / "out.json").stat().st_mode & 0o777 == 0o644
