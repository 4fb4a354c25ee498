"""The engine cache in FCNSEG_HOME: keyed by content, validated before use, made once under concurrency, bounded."""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import time
from pathlib import Path

import pytest
import torch

import fcnseg
from fcnseg.errors import ExportError
from fcnseg.inference import store as store_mod
from fcnseg.inference.store import GraphStore, evict
from fcnseg.runtime.checkpoint import CheckpointInfo, model_kwargs, save_checkpoint

INTERFACE = {"arch": "fcn8s_vgg16", "heads": {"": 3}}


@pytest.fixture
def checkpoint(tmp_path) -> Path:
    model = fcnseg.get_model("fcn8s_vgg16", num_classes=3, width=1 / 16)
    return save_checkpoint(tmp_path / "m", model, CheckpointInfo(arch=model.arch, model_kwargs=model_kwargs(model)))


def _make(calls: list[int], content: bytes = b"graph"):
    def make(folder: Path) -> str:
        calls.append(1)
        (folder / "model.onnx").write_bytes(content)
        (folder / "model.onnx.data").write_bytes(b"weights" * 100)
        return "model.onnx"

    return make


def test_a_graph_is_made_once_per_content_and_lives_in_fcnseg_home(checkpoint, fcnseg_home) -> None:
    calls: list[int] = []
    first = GraphStore(checkpoint).graph("onnx", INTERFACE, _make(calls))
    again = GraphStore(checkpoint).graph("onnx", INTERFACE, _make(calls))
    assert first == again and calls == [1] and first.read_bytes() == b"graph"
    assert fcnseg_home in first.parents and sorted(p.name for p in checkpoint.parent.iterdir()) == ["m.safetensors"]
    stat = checkpoint.stat()  # new content that keeps size and mtime: another entry
    model = fcnseg.get_model("fcn8s_vgg16", num_classes=3, width=1 / 16)
    with torch.no_grad():
        model.score_fr.bias.fill_(1.0)
    save_checkpoint(
        checkpoint.with_suffix(""), model, CheckpointInfo(arch=model.arch, model_kwargs=model_kwargs(model))
    )
    os.utime(checkpoint, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    other = GraphStore(checkpoint).graph("onnx", INTERFACE, _make(calls))
    assert calls == [1, 1] and other.parent.parent != first.parent.parent


@pytest.mark.parametrize("damage", ["flip a byte", "truncate", "another interface", "record"])
def test_a_damaged_or_foreign_cached_graph_is_made_again(checkpoint, damage) -> None:
    calls: list[int] = []
    path = GraphStore(checkpoint).graph("onnx", INTERFACE, _make(calls))
    interface = INTERFACE
    if damage == "flip a byte":
        path.write_bytes(b"grapH")  # same size: only the recorded hash can tell
    elif damage == "truncate":
        (path.parent / "model.onnx.data").write_bytes(b"w")
    elif damage == "another interface":
        interface = {**INTERFACE, "heads": {"": 21}}  # another model's graph must not run
    else:
        (path.parent / "record.json").write_text("{not json")
    again = GraphStore(checkpoint).graph("onnx", interface, _make(calls))
    assert calls == [1, 1] and again.read_bytes() == b"graph"


def test_a_failed_make_leaves_nothing_in_the_cache(checkpoint) -> None:
    store = GraphStore(checkpoint)

    def fails(folder: Path) -> str:
        (folder / "model.onnx").write_bytes(b"half")
        raise ExportError("export failed")

    with pytest.raises(ExportError):
        store.graph("onnx", INTERFACE, fails)
    assert not (store.root / "onnx").exists() and not list(store.root.glob(".tmp-*"))


def test_a_graph_made_from_another_graph_of_the_entry_does_not_wait_for_itself(checkpoint) -> None:
    """The int8 OpenVINO graph is quantized from the entry's ONNX graph: made inside the entry's lock, the ONNX
    graph must take that lock again, not wait for it (a second flock on the same file waited forever)."""
    store, calls, made = GraphStore(checkpoint), [], []

    def openvino_int8(folder: Path) -> str:
        onnx = store.graph("onnx", INTERFACE, _make(calls))
        (folder / "model.xml").write_bytes(onnx.read_bytes() + b" quantized")
        return "model.xml"

    worker = threading.Thread(target=lambda: made.append(store.graph("openvino-int8", INTERFACE, openvino_int8)))
    worker.daemon = True  # a deadlocked worker must not hold the test run at exit
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive(), "making a graph inside another graph's make waited for its own lock"
    assert made[0].read_bytes() == b"graph quantized" and calls == [1]


def _slow_make(args: tuple[str, str, str]) -> str:
    checkpoint, log, home = args
    os.environ["FCNSEG_HOME"] = home

    def make(folder: Path) -> str:
        with open(log, "a") as f:
            f.write("made\n")
        time.sleep(1.0)
        (folder / "model.onnx").write_bytes(b"graph")
        return "model.onnx"

    return str(GraphStore(checkpoint).graph("onnx", INTERFACE, make))


def test_two_processes_asking_at_once_make_it_once(checkpoint, tmp_path, fcnseg_home) -> None:
    log = tmp_path / "log"
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        paths = pool.map(_slow_make, [(str(checkpoint), str(log), str(fcnseg_home))] * 2)
    assert paths[0] == paths[1] and log.read_text() == "made\n"


def test_the_cache_is_bounded_least_recently_used_first(tmp_path, fcnseg_home) -> None:
    stores = []
    for i in range(3):
        f = tmp_path / f"w{i}.bin"
        f.write_bytes(bytes([i]) * 10)
        s = GraphStore(f)
        s.graph("onnx", INTERFACE, _make([], b"x" * 1000))
        (s.root / "last_used").write_text(str(1000.0 + i))  # w0 used longest ago
        stores.append(s)
    (stores[0].root / "last_used").write_text("5000")  # w0 used again, most recently
    size = sum(p.stat().st_size for p in (fcnseg_home / "engines").rglob("*") if p.is_file())
    removed = evict(max_bytes=size - 1)
    assert removed == [stores[1].root] and stores[0].root.is_dir() and stores[2].root.is_dir()


def test_hashes_are_remembered_by_path_size_mtime_and_inode(checkpoint, fcnseg_home, monkeypatch) -> None:
    first = store_mod.content_key(checkpoint)
    monkeypatch.setattr(store_mod, "file_sha256", lambda path, chunk=0: pytest.fail("hashed again"))
    assert store_mod.content_key(checkpoint) == first
    assert json.loads((fcnseg_home / "hashes.json").read_text())
