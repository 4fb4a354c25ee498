"""auto builds exported engines in a background thread: the images go on on PyTorch (or on an engine ready at once)
until the build is done, then the built engine is guarded and timed against the one running, and the decision is
kept for later processes only then."""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

import fcnseg
from fcnseg.errors import ExportError
from fcnseg.inference import Segmenter
from fcnseg.inference import auto as auto_mod
from fcnseg.inference import measuring as measuring_mod
from fcnseg.inference.auto import AutoEngine
from fcnseg.inference.costs import Estimate
from fcnseg.inference.pending import Builds
from fcnseg.runtime.checkpoint import CheckpointInfo, model_kwargs, save_checkpoint

needs_ort = pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime", "onnxscript")), reason="needs the onnx extra"
)


@pytest.fixture
def checkpoint(tmp_path) -> Path:
    torch.manual_seed(0)
    model = fcnseg.get_model("fcn8s_vgg16", num_classes=4, width=1 / 16, pad100=False)
    with torch.no_grad():  # random score layers: several classes in every map
        for n in model.score_layer_names():
            getattr(model, n).weight.normal_(0, 1.0)
    info = CheckpointInfo(arch=model.arch, model_kwargs=model_kwargs(model), classes=["bg", "a", "b", "c"])
    return save_checkpoint(tmp_path / "m", model, info)


def _images(n: int) -> list[np.ndarray]:
    return [np.random.default_rng(i).integers(0, 256, (64, 64, 3), dtype=np.uint8) for i in range(n)]


def _worth(monkeypatch, *engines: str) -> None:
    monkeypatch.setattr(auto_mod, "MIN_FORWARD_S", {"cpu": 0.0})
    monkeypatch.setattr(
        AutoEngine, "_worth_tuning", lambda self, torch_s, spent_s: [Estimate(e, 2.0, 0.0) for e in engines]
    )


def _held(monkeypatch, release: threading.Event, fail: bool = False) -> None:
    """Background builds wait for ``release`` (and then fail, with ``fail``)."""
    real = AutoEngine._build

    def build(self, name):
        assert release.wait(60)
        if fail:
            raise ExportError(f"{name}: export failed in its own process (killed by signal 9): no message")
        return real(self, name)

    monkeypatch.setattr(AutoEngine, "_build", build)


@needs_ort
def test_images_go_on_on_pytorch_while_the_engine_builds_and_its_decision_is_kept_when_done(
    checkpoint, fcnseg_home, monkeypatch
) -> None:
    _worth(monkeypatch, "onnxruntime")
    release = threading.Event()
    _held(monkeypatch, release)
    images = _images(4)
    reference = Segmenter(checkpoint, engine="torch", device="cpu").predict_many(images)
    seg = Segmenter(checkpoint, engine="auto", device="cpu")
    seg.expect(100)
    got = [seg.predict(images[0]), seg.predict(images[1])]  # the build is held: these cannot have waited for it
    auto = seg.engine
    (builds,) = auto._pending.values()
    assert not builds.done() and not auto.decisions and not builds._thread.daemon
    assert not list(fcnseg_home.glob("engines/*/decisions.json"))  # nothing decided, nothing kept
    release.set()
    builds.wait()
    got += [seg.predict(images[2]), seg.predict(images[3])]
    (decision,) = auto.decisions.values()
    assert set(decision.seconds) == {"torch", "onnxruntime"} and "built while the job went on" in decision.reason
    assert decision.build_s["onnxruntime"] > 0 and not auto._pending
    assert list(fcnseg_home.glob("engines/*/decisions.json"))  # kept for later processes now
    assert all(np.array_equal(g, r) for g, r in zip(got, reference, strict=True))


@needs_ort
def test_a_background_build_that_fails_is_left_out_saying_why(checkpoint, fcnseg_home, monkeypatch) -> None:
    _worth(monkeypatch, "onnxruntime")
    release = threading.Event()
    release.set()
    _held(monkeypatch, release, fail=True)
    seg = Segmenter(checkpoint, engine="auto", device="cpu")
    seg.expect(100)
    images = _images(2)
    seg.predict(images[0])
    (builds,) = seg.engine._pending.values()
    builds.wait()
    seg.predict(images[1])
    (decision,) = seg.engine.decisions.values()
    assert decision.engine == "torch" and "killed by signal 9" in decision.skipped["onnxruntime"]


@needs_ort
@pytest.mark.slow  # ~10 s on 2 cores: the default suite stays under 6 minutes
def test_an_engine_ready_at_once_runs_until_the_build_is_done_and_pytorch_is_not_timed_again(
    checkpoint, fcnseg_home, monkeypatch
) -> None:
    _worth(monkeypatch, "torch-bf16", "onnxruntime")
    monkeypatch.setattr(measuring_mod, "eligible", lambda name, device, exportable: None)
    monkeypatch.setattr(measuring_mod, "agreement", lambda ref, out: 1.0)
    timed: list[list[str]] = []
    speed = {"torch": 1.0, "torch-bf16": 0.5, "onnxruntime": 0.2}

    warm: list[set[str]] = []

    def fake_time(self, engines, x, *a, **k):
        timed.append(list(engines))
        warm.append(set(k.get("warm", ())))
        return {e: speed[e] * (2 if len(timed) > 1 else 1) for e in engines}  # the second input is twice as big

    monkeypatch.setattr(AutoEngine, "_time", fake_time)
    release = threading.Event()
    _held(monkeypatch, release)
    seg = Segmenter(checkpoint, engine="auto", device="cpu")
    seg.expect(100)
    images = _images(3)
    seg.predict(images[0])
    auto = seg.engine
    (interim,) = auto.decisions.values()
    assert interim.engine == "torch-bf16" and timed == [["torch", "torch-bf16"]]
    assert auto.engine_for(torch.zeros(1, 3, 64, 64)) == "torch-bf16"  # runs the images until the build is done
    assert not list(fcnseg_home.glob("engines/*/decisions.json"))  # interim: not kept
    release.set()
    auto._pending[interim.bucket].wait()
    seg.predict(images[1])
    (final,) = auto.decisions.values()
    assert sorted(timed[1]) == ["onnxruntime", "torch-bf16"]  # PyTorch not run again: scaled from torch-bf16
    assert warm == [set(), {"torch-bf16"}]  # the engine that ran the images meanwhile needs no warm-up
    assert final.engine == "onnxruntime" and final.seconds["torch"] == pytest.approx(2.0)
    assert final.agreement["torch-bf16"] == 1.0 and final.build_s["torch-bf16"] == interim.build_s["torch-bf16"]
    assert list(fcnseg_home.glob("engines/*/decisions.json"))


def test_builds_run_one_after_the_other_and_keep_each_failure() -> None:
    order: list[str] = []

    def build(name: str) -> str:
        order.append(name)
        if name == "b":
            raise RuntimeError("no")
        return name.upper()

    builds = Builds(["a", "b", "c"], "why").start(build)
    builds.wait()
    assert builds.done() and order == ["a", "b", "c"] and builds.runners == {"a": "A", "c": "C"}
    assert str(builds.errors["b"]) == "no" and set(builds.seconds) == {"a", "b", "c"}


def test_the_forward_pytorch_just_ran_counts_as_its_first_timed_round() -> None:
    from collections import Counter

    calls: Counter[str] = Counter()

    class Host(measuring_mod.Measuring):
        device = torch.device("cpu")

        def runner(self, engine):
            return lambda x: calls.update([engine])

    seconds = Host()._time(["torch", "other"], torch.zeros(1), rounds=2, known={"torch": 1e-9})
    assert calls == {"torch": 1, "other": 3}  # no warm-up and one round fewer for PyTorch; warm-up + 2 for the other
    assert seconds["torch"] == 0.0 and seconds["other"] >= 0.0  # the known run's time is one of its samples


def test_an_engine_already_warm_is_timed_without_a_warm_up_call() -> None:
    from collections import Counter

    calls: Counter[str] = Counter()

    class Host(measuring_mod.Measuring):
        device = torch.device("cpu")

        def runner(self, engine):
            return lambda x: calls.update([engine])

    Host()._time(["interim", "new"], torch.zeros(1), rounds=2, warm={"interim"})
    assert calls == {"interim": 2, "new": 3}


def test_the_images_being_segmented_are_guarded_against_the_fp32_output_already_computed(
    checkpoint, fcnseg_home, monkeypatch
) -> None:
    """No calibration images: the first image calibrates, and fp32's output on it, computed to segment it, is the
    guard's reference (not computed again); a copy, so a caller changing the output in place cannot move it."""
    _worth(monkeypatch, "torch-bf16")
    monkeypatch.setattr(measuring_mod, "eligible", lambda name, device, exportable: None)
    seg = Segmenter(checkpoint, engine="auto", device="cpu")
    seg.expect(100)
    auto = seg.engine
    torch_runs: list[tuple[int, ...]] = []
    real_runner = AutoEngine.runner

    def runner(self, engine):
        run = real_runner(self, engine)
        if engine != "torch":
            return run
        return lambda x: torch_runs.append(tuple(x.shape)) or run(x)

    monkeypatch.setattr(AutoEngine, "runner", runner)
    x = torch.from_numpy(_images(1)[0]).permute(2, 0, 1)[None].float() / 255
    out = auto(x)
    expected = real_runner(auto, "torch")(x)
    assert len(torch_runs) == 2  # the image (its first timed round) and one more round; none for the guard
    (decision,) = auto.decisions.values()
    assert decision.agreement["torch-bf16"] > 0.9
    assert torch.equal(auto._refs[0], expected)
    out.zero_()
    assert torch.equal(auto._refs[0], expected)
