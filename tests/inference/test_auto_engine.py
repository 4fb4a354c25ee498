"""``--engine auto``: PyTorch first; another engine only when the work repays it; the guard, the cache in
FCNSEG_HOME, forced engines, missing extras, the fallback to PyTorch, dropping the fp32 weights."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import fcnseg
from fcnseg.errors import ConfigError, ExportError
from fcnseg.inference import Segmenter
from fcnseg.inference import auto as auto_mod
from fcnseg.inference import engines as engines_mod
from fcnseg.inference import measuring as measuring_mod
from fcnseg.inference.auto import AutoEngine, agreement, size_bucket
from fcnseg.inference.costs import Estimate, tuning_pays
from fcnseg.inference.runners import CastModel
from fcnseg.runtime import hardware
from fcnseg.runtime.checkpoint import CheckpointInfo, model_kwargs, save_checkpoint

HAS_ORT = all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime", "onnxscript"))
HAS_OV = HAS_ORT and importlib.util.find_spec("openvino") is not None
needs_ort = pytest.mark.skipif(not HAS_ORT, reason="needs the onnx extra")


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    model = fcnseg.get_model("fcn8s_vgg16", num_classes=4, width=1 / 16, pad100=False)
    with torch.no_grad():  # random score layers: several classes in every map
        for n in model.score_layer_names():
            getattr(model, n).weight.normal_(0, 1.0)
    return model.eval()


@pytest.fixture
def checkpoint(tmp_path) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    model = _model()
    info = CheckpointInfo(arch=model.arch, model_kwargs=model_kwargs(model), classes=["bg", "a", "b", "c"])
    return save_checkpoint(folder / "m", model, info)


def _tune_with(monkeypatch, engine: str) -> None:
    """Tune at once, with ``engine`` the one expected to be fastest (this tiny model is far under MIN_FORWARD_S)."""
    monkeypatch.setattr(auto_mod, "MIN_FORWARD_S", {"cpu": 0.0, "cuda": 0.0})
    monkeypatch.setattr(AutoEngine, "_worth_tuning", lambda self, torch_s, spent_s: [Estimate(engine, 2.0, 0.0)])
    monkeypatch.setattr(AutoEngine, "background", False)  # decided before predict returns (test_auto_background)


def _image(seed: int = 0, size: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def _beside(checkpoint: Path) -> list[str]:
    return sorted(p.name for p in checkpoint.parent.iterdir())


def test_size_bucket_groups_images_by_pixel_count() -> None:
    assert size_bucket(37, 41) == 64 and size_bucket(500, 500) == 512 and size_bucket(375, 500) == 512
    assert size_bucket(513, 513) == 1024 and size_bucket(1, 1) == 64


def test_auto_tunes_the_engines_that_pay_most_first(checkpoint, monkeypatch) -> None:
    """With many images left, the engines whose expected saving is largest are tuned (at most two)."""
    monkeypatch.setattr(auto_mod, "MIN_FORWARD_S", {"cpu": 0.0})
    estimates = [Estimate("torch-bf16", 1.5, 0.0), Estimate("openvino-int8", 3.0, 1e9), Estimate("onnxruntime", 2.0, 0)]
    monkeypatch.setattr(AutoEngine, "_estimates", lambda self: estimates)
    monkeypatch.setattr(AutoEngine, "background", False)
    tuned: list[list[str]] = []
    monkeypatch.setattr(AutoEngine, "_tune", lambda self, x, bucket, names, reason, **kw: tuned.append(names))
    seg = Segmenter(checkpoint, engine="auto", device="cpu")
    seg.expect(1000)
    seg.predict(_image())
    assert tuned == [["onnxruntime", "torch-bf16"]]  # openvino-int8's build would never pay: left out


def test_tuning_pays_only_when_the_images_left_save_more_than_it_costs() -> None:
    est = Estimate("openvino-bf16", speedup=2.0, build_s=60.0)
    assert not tuning_pays(est, torch_s=5.0, images_left=0, spent_s=5.0)[0]  # one photo: PyTorch, at once
    assert not tuning_pays(est, torch_s=5.0, images_left=9, spent_s=5.0)[0]  # 9 × 2.5 s saved < 60 s + checks
    ok, why = tuning_pays(est, torch_s=5.0, images_left=99, spent_s=5.0)  # 99 × 2.5 s saved > the cost
    assert ok and "99 image(s)" in why
    assert not tuning_pays(est, 5.0, None, spent_s=20.0)[0] and tuning_pays(est, 5.0, None, spent_s=200.0)[0]


def test_small_work_runs_fp32_torch_and_writes_nothing_anywhere(checkpoint, fcnseg_home, monkeypatch) -> None:
    monkeypatch.setattr(auto_mod, "MIN_FORWARD_S", {"cpu": 1e9})  # "small" is a measured time: raised, not trusted
    seg = Segmenter(checkpoint, engine="auto", device="cpu")
    seg.predict(_image())
    (decision,) = seg.engine.decisions.values()
    assert decision.engine == "torch" and decision.reason == "small"
    assert _beside(checkpoint) == ["m.safetensors"] and not (fcnseg_home / "engines").exists()


def test_a_one_image_job_runs_pytorch_and_touches_no_cache(checkpoint, fcnseg_home, monkeypatch) -> None:
    monkeypatch.setattr(auto_mod, "MIN_FORWARD_S", {"cpu": 0.0})
    seg = Segmenter(checkpoint, engine="auto", device="cpu")
    seg.expect(1)
    seg.predict(_image())
    assert seg.engine.decisions == {} and not any(fcnseg_home.iterdir())  # not even the checkpoint's hash


@needs_ort
def test_a_large_job_tunes_keeps_the_decision_in_fcnseg_home_and_nothing_beside_the_checkpoint(
    checkpoint, fcnseg_home, monkeypatch
) -> None:
    _tune_with(monkeypatch, "onnxruntime")
    checkpoint.parent.chmod(0o555)  # a read-only model folder works
    try:
        seg = Segmenter(checkpoint, engine="auto", device="cpu")
        seg.expect(100)
        labels = seg.predict(_image())
    finally:
        checkpoint.parent.chmod(0o755)
    (decision,) = seg.engine.decisions.values()
    assert set(decision.seconds) == {"torch", "onnxruntime"} and decision.build_s["onnxruntime"] > 0
    assert decision.engine == min(decision.seconds, key=decision.seconds.get)
    assert _beside(checkpoint) == ["m.safetensors"]
    entry = seg.engine.store.root
    assert entry.parent == fcnseg_home / "engines" and (entry / "onnx" / "record.json").is_file()
    kept = json.loads((entry / "decisions.json").read_text())
    assert kept[f"{hardware.fingerprint()['id']}/64"]["engine"] == decision.engine
    reference = Segmenter(checkpoint, engine="torch", device="cpu").predict(_image())
    assert (labels == reference).mean() >= auto_mod.AGREEMENT


def test_a_cached_decision_is_reused_and_a_changed_checkpoint_or_machine_decides_again(checkpoint, monkeypatch) -> None:
    _tune_with(monkeypatch, "torch-bf16")
    measured: list[int] = []
    real = AutoEngine._measure
    monkeypatch.setattr(
        AutoEngine, "_measure", lambda self, x, b, n, **kw: measured.append(b) or real(self, x, b, n, **kw)
    )

    def run(size: int = 64) -> None:
        seg = Segmenter(checkpoint, engine="auto", device="cpu")
        seg.expect(10)
        seg.predict_many([_image(size=size), _image(1, size)])

    run()
    run()  # same content, machine, bucket: read from FCNSEG_HOME
    assert measured == [64]
    run(200)  # another bucket
    assert measured == [64, 256]
    stat = checkpoint.stat()  # new content, same size and mtime: the content hash decides again
    model = _model()
    with torch.no_grad():
        model.score_fr.weight.mul_(2)
    save_checkpoint(
        checkpoint.with_suffix(""), model, CheckpointInfo(arch=model.arch, model_kwargs=model_kwargs(model))
    )
    os.utime(checkpoint, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    run()
    assert measured == [64, 256, 64]
    monkeypatch.setattr(auto_mod, "fingerprint", lambda device=None: {"id": "another-machine"})
    run()
    assert measured == [64, 256, 64, 64]


def test_the_accuracy_guard_refuses_a_fast_precision_that_changes_labels(checkpoint, monkeypatch) -> None:
    _tune_with(monkeypatch, "torch-bf16")

    class FastButWrong(torch.nn.Module):
        def forward(self, x):
            out = torch.zeros(x.shape[0], 4, *x.shape[-2:])
            out[:, 3] = 1.0  # every pixel "c"
            return out

    real_build = auto_mod.build_runner
    monkeypatch.setattr(
        auto_mod, "build_runner", lambda e, m, **kw: FastButWrong() if e == "torch-bf16" else real_build(e, m, **kw)
    )
    seg = Segmenter(checkpoint, engine="auto", device="cpu")
    seg.expect(5)
    seg.predict(_image())
    (decision,) = seg.engine.decisions.values()
    assert decision.engine == "torch" and decision.agreement["torch-bf16"] < auto_mod.AGREEMENT
    assert "label agreement" in decision.skipped["torch-bf16"]


def test_an_engine_that_fails_at_run_time_falls_back_to_pytorch_with_one_warning(
    checkpoint, monkeypatch, caplog
) -> None:
    _tune_with(monkeypatch, "torch-bf16")

    class Breaks(torch.nn.Module):
        calls = 0

        def forward(self, x):
            Breaks.calls += 1
            if Breaks.calls > 1:  # built and guarded fine (one calibration image); fails on the next input
                raise RuntimeError("Can not create file mapping: Cannot allocate memory")
            return torch.zeros(x.shape[0], 4, *x.shape[-2:]) - 1e9 * (torch.arange(4) != 0).view(1, 4, 1, 1)

    real_build = auto_mod.build_runner
    monkeypatch.setattr(
        auto_mod, "build_runner", lambda e, m, **kw: Breaks() if e == "torch-bf16" else real_build(e, m, **kw)
    )
    monkeypatch.setattr(measuring_mod, "agreement", lambda ref, out: 1.0)
    monkeypatch.setattr(
        AutoEngine, "_time", lambda self, engines, x, *a, **k: {e: 1.0 if e == "torch" else 0.1 for e in engines}
    )
    seg = Segmenter(checkpoint, engine="auto", device="cpu")
    seg.expect(10)
    reference = Segmenter(checkpoint, engine="torch", device="cpu").predict_many([_image(i) for i in range(4)])
    with caplog.at_level(logging.WARNING, logger="fcnseg"):
        got = [seg.predict(_image(i)) for i in range(4)]
    assert all(np.array_equal(g, r) for g, r in zip(got[1:], reference[1:], strict=True))  # PyTorch's labels
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "torch-bf16 failed" in warnings[0].getMessage()
    assert "Cannot allocate memory" in warnings[0].getMessage()
    decision = seg.engine.decisions[64]
    assert decision.engine == "torch" and "failed at run time" in decision.skipped["torch-bf16"]
    kept = json.loads((seg.engine.store.root / "decisions.json").read_text())
    assert next(iter(kept.values()))["engine"] == "torch"  # revised for later processes too


@needs_ort
def test_an_engine_whose_probe_fails_is_left_out_saying_why(checkpoint, monkeypatch) -> None:
    from fcnseg.inference import runners

    real = runners.run_child

    def crashing(task, spec, **kw):
        if task == "probe":
            raise ExportError("probe failed in its own process (killed by signal 11): no message")
        return real(task, spec, **kw)

    monkeypatch.setattr(runners, "run_child", crashing)
    _tune_with(monkeypatch, "onnxruntime")
    seg = Segmenter(checkpoint, engine="auto", device="cpu")
    seg.expect(10)
    labels = seg.predict(_image())
    (decision,) = seg.engine.decisions.values()
    assert decision.engine == "torch" and "signal 11" in decision.skipped["onnxruntime"]
    assert np.array_equal(labels, Segmenter(checkpoint, engine="torch", device="cpu").predict(_image()))
    with pytest.raises(ExportError, match="failed its probe on this machine earlier"):  # remembered: not retried
        Segmenter(checkpoint, engine="onnxruntime", device="cpu").predict(_image())


def test_agreement_counts_pixels_over_all_heads() -> None:
    a = torch.zeros(1, 2, 2, 2)
    a[:, 1, 0, 0] = 1  # one pixel of four is class 1
    b = torch.zeros(1, 2, 2, 2)
    assert agreement(a, b) == 0.75 and agreement({"x": a, "y": a}, {"x": b, "y": a}) == 0.875


def test_reduced_precisions_need_their_units(monkeypatch) -> None:
    monkeypatch.setattr(hardware, "has_bf16_units", lambda: False)
    monkeypatch.setattr(hardware, "has_int8_units", lambda: False)
    cpu = torch.device("cpu")
    assert "no bf16 units" in engines_mod.eligible("torch-bf16", cpu, exportable=True)
    if HAS_ORT:
        assert "no int8" in engines_mod.eligible("onnxruntime-int8", cpu, exportable=True)
        assert engines_mod.eligible("onnxruntime", cpu, exportable=True) is None
    assert engines_mod.unavailable("torch-bf16", cpu, exportable=False) is None  # forcing it is allowed


@needs_ort
@pytest.mark.parametrize(
    "engine",
    [
        pytest.param("onnxruntime", marks=pytest.mark.slow),
        pytest.param(
            "openvino", marks=[pytest.mark.slow, pytest.mark.skipif(not HAS_OV, reason="needs the openvino extra")]
        ),
    ],
)
def test_forced_fp32_engines_give_torch_labels(checkpoint, engine) -> None:
    images = [_image(i) for i in range(2)]
    want = Segmenter(checkpoint, engine="torch", device="cpu").predict_many(images)
    got = Segmenter(checkpoint, engine=engine, device="cpu").predict_many(images)
    assert all((g == w).mean() > 0.999 for g, w in zip(got, want, strict=True))
    assert _beside(checkpoint) == ["m.safetensors"]


def test_exported_engines_need_a_checkpoint_file() -> None:
    seg = Segmenter(_model(), engine="onnxruntime", device="cpu")
    with pytest.raises(ConfigError, match="exported from a checkpoint file"):
        seg.predict(_image())


def test_a_missing_extra_is_one_line_naming_it(monkeypatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "openvino" else real(name, *a))
    reason = engines_mod.unavailable("openvino-bf16", torch.device("cpu"), exportable=True)
    assert reason == "needs openvino: pip install 'fcnseg[openvino]'"
    from fcnseg.bench import missing_extra

    assert missing_extra("openvino") == reason and missing_extra("torch") is None


def test_fcnseg_engine_variable_is_checked(monkeypatch) -> None:
    monkeypatch.setenv("FCNSEG_ENGINE", "tensorrt")
    with pytest.raises(ConfigError, match="FCNSEG_ENGINE='tensorrt'"):
        Segmenter(_model())
    monkeypatch.setenv("FCNSEG_ENGINE", "auto")
    assert Segmenter(_model()).engine.engine == "auto"


def test_eval_and_predict_take_the_engine_and_a_bad_variable_is_one_line(
    checkpoint, tmp_path, monkeypatch, capsys
) -> None:
    from PIL import Image

    from fcnseg.cli.main import main

    assert (
        main(
            [
                "eval",
                "--checkpoint",
                str(checkpoint),
                "--engine",
                "torch-bf16",
                "--max-images",
                "2",
                "--num-workers",
                "0",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert "mean IU" in capsys.readouterr().out
    Image.fromarray(_image()).save(tmp_path / "x.png")
    monkeypatch.setenv("FCNSEG_ENGINE", "fastest")
    assert (
        main(["predict", "--checkpoint", str(checkpoint), str(tmp_path / "x.png"), "--out", str(tmp_path / "o")]) == 2
    )
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "FCNSEG_ENGINE='fastest'" in err


@pytest.mark.parametrize("junk", ["{not json", "[]", '{"k/64": {"engine": 3}}'])
def test_a_damaged_decision_record_is_ignored_and_rewritten(checkpoint, monkeypatch, junk) -> None:
    _tune_with(monkeypatch, "torch-bf16")
    seg = Segmenter(checkpoint, engine="auto", device="cpu")
    seg.engine.store.root.mkdir(parents=True, exist_ok=True)
    (seg.engine.store.root / "decisions.json").write_text(junk)
    seg.expect(5)
    seg.predict(_image())
    kept = json.loads((seg.engine.store.root / "decisions.json").read_text())
    assert any(isinstance(e, dict) and e.get("engine") in engines_mod.ENGINES for e in kept.values())


def test_torch_bf16_on_the_cpu_is_a_bf16_copy_that_leaves_the_fp32_model_alone(checkpoint) -> None:
    seg = Segmenter(checkpoint, engine="torch-bf16", device="cpu")
    images = [_image(i) for i in range(2)]
    got = seg.predict_many(images)
    runner = seg.engine.runner("torch-bf16")
    assert next(runner.model.parameters()).dtype == torch.bfloat16
    assert all(p.dtype == torch.float32 for p in seg.model.parameters())
    want = Segmenter(checkpoint, engine="torch", device="cpu").predict_many(images)
    assert all((g == w).mean() > 0.98 for g, w in zip(got, want, strict=True))


@pytest.mark.parametrize("name", ["fcn32s_alexnet", "fcn32s_googlenet", "fcn8s_resnet18", "fcn8s_vgg16"])
def test_the_bf16_copy_runs_every_backbone_family(name: str) -> None:
    """AlexNet's and GoogLeNet's LRN has no bf16 CPU kernel: it runs in fp32 inside the bf16 copy."""
    model = fcnseg.get_model(name, num_classes=3, width=0.125).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        out = CastModel(model, torch.bfloat16)(x)
        assert out.dtype == torch.float32 and out.shape == model(x).shape


@pytest.mark.slow
@needs_ort
def test_fp32_weights_are_dropped_while_only_an_exported_engine_runs_and_read_back_when_needed(
    checkpoint, monkeypatch
) -> None:
    """A Segmenter that loaded its checkpoint keeps no fp32 copy once every size runs on an exported engine, and gets
    it back from the file, unchanged, for a PyTorch engine."""
    reference = Segmenter(checkpoint, engine="torch", device="cpu").predict(_image())
    _tune_with(monkeypatch, "onnxruntime")
    monkeypatch.setattr(
        AutoEngine, "_time", lambda self, engines, x, *a, **k: {e: 1.0 if e == "torch" else 0.1 for e in engines}
    )
    seg = Segmenter(checkpoint, engine="auto", device="cpu")
    seg.expect(10)
    seg.predict(_image())  # PyTorch's; then tuned
    assert seg.engine.decisions[64].engine == "onnxruntime" and seg.engine.released
    assert all(p.is_meta for p in seg.model.parameters()) and set(seg.engine._runners) == {"onnxruntime"}
    labels = seg.predict(_image())  # the exported engine runs without the weights
    assert (labels == reference).mean() > 0.999
    out = seg.engine.runner("torch")(torch.zeros(1, 3, 32, 32))  # PyTorch again: read back
    assert not seg.engine.released and out.shape == (1, 4, 32, 32)
    fresh = Segmenter(checkpoint, engine="torch", device="cpu").model
    for (name, a), b in zip(seg.model.state_dict().items(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_a_bare_model_is_never_dropped(monkeypatch) -> None:
    """Weights that may differ from any file (a model handed over in memory) are kept."""
    _tune_with(monkeypatch, "torch-bf16")
    seg = Segmenter(_model(), engine="auto", device="cpu")
    seg.expect(5)
    seg.predict(_image())
    assert not seg.engine.reloadable and not seg.engine.released
