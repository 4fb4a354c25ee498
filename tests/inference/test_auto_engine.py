"""``--engine auto``: which engines it tries, the accuracy guard, the cache key, forced engines, missing extras."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import fcnseg
from fcnseg.errors import ConfigError
from fcnseg.inference import Segmenter
from fcnseg.inference import auto as auto_mod
from fcnseg.inference import engines as engines_mod
from fcnseg.inference.auto import AutoEngine, agreement, size_bucket
from fcnseg.runtime.checkpoint import CheckpointInfo, model_kwargs, save_checkpoint
from fcnseg.runtime.hardware import fingerprint

HAS_ORT = all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime", "onnxscript"))
HAS_OV = HAS_ORT and importlib.util.find_spec("openvino") is not None


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    model = fcnseg.get_model("fcn8s_vgg16", num_classes=4, width=1 / 16, pad100=False)
    with torch.no_grad():  # random score layers: several classes in every map
        for n in model.score_layer_names():
            getattr(model, n).weight.normal_(0, 1.0)
    return model.eval()


@pytest.fixture
def checkpoint(tmp_path) -> Path:
    model = _model()
    info = CheckpointInfo(arch=model.arch, model_kwargs=model_kwargs(model), classes=["bg", "a", "b", "c"])
    return save_checkpoint(tmp_path / "m", model, info)


@pytest.fixture
def always_decide(monkeypatch) -> None:
    """Decide even for this tiny model (its forward pass is far under MIN_FORWARD_S)."""
    monkeypatch.setattr(auto_mod, "MIN_FORWARD_S", {"cpu": 0.0, "cuda": 0.0})


def _torch_only(monkeypatch, allowed=("torch-bf16",)) -> None:
    real = auto_mod.eligible
    monkeypatch.setattr(auto_mod, "eligible", lambda e, d, source: real(e, d, source=source) if e in allowed else "off")


def _image(seed: int = 0, size: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def test_size_bucket_groups_images_by_pixel_count() -> None:
    assert size_bucket(37, 41) == 64 and size_bucket(500, 500) == 512 and size_bucket(375, 500) == 512
    assert size_bucket(513, 513) == 1024 and size_bucket(1, 1) == 64


def test_small_work_runs_fp32_torch_and_writes_nothing(checkpoint, monkeypatch) -> None:
    # "small" is a measured time: the threshold is raised rather than trusting a loaded machine's speed
    monkeypatch.setattr(auto_mod, "MIN_FORWARD_S", {"cpu": 1e9})
    seg = Segmenter(checkpoint, engine="auto")
    seg.predict(_image())
    (decision,) = seg.engine.decisions.values()
    assert decision.engine == "torch" and decision.reason == "small"
    assert not seg.engine.cache_path().exists()


@pytest.mark.skipif(not HAS_ORT, reason="needs the onnx extra")
def test_auto_times_every_eligible_engine_picks_the_fastest_and_caches_it(checkpoint, always_decide) -> None:
    seg = Segmenter(checkpoint, engine="auto", calibration=lambda: [torch.randn(3, 64, 64) for _ in range(2)])
    labels = seg.predict(_image())
    (decision,) = seg.engine.decisions.values()
    tried = set(decision.seconds)
    assert {"torch", "onnxruntime"} <= tried and decision.engine == min(decision.seconds, key=decision.seconds.get)
    for engine in engines_mod.ENGINES:  # every engine was either timed or skipped with its reason
        assert engine in tried or decision.skipped.get(engine)
    for engine, share in decision.agreement.items():  # every reduced precision timed passed the guard
        assert engine not in tried or share >= auto_mod.AGREEMENT
    reference = Segmenter(checkpoint, engine="torch").predict(_image())
    assert (labels == reference).mean() >= auto_mod.AGREEMENT
    cache = json.loads(seg.engine.cache_path().read_text())["entries"]
    (entry,) = cache.values()
    assert entry["decision"]["engine"] == decision.engine and entry["machine"]["id"] == fingerprint()["id"]


def test_a_cached_decision_is_reused_and_a_changed_checkpoint_or_machine_decides_again(
    checkpoint, always_decide, monkeypatch
) -> None:
    _torch_only(monkeypatch)
    measured: list[int] = []
    real = AutoEngine._measure

    def counting(self, x, bucket):
        measured.append(bucket)
        return real(self, x, bucket)

    monkeypatch.setattr(AutoEngine, "_measure", counting)
    Segmenter(checkpoint, engine="auto").predict(_image())
    Segmenter(checkpoint, engine="auto").predict(_image(1))  # same content, machine, bucket: read from the cache
    assert measured == [64]
    Segmenter(checkpoint, engine="auto").predict(_image(size=200))  # another bucket
    assert measured == [64, 256]
    stat = checkpoint.stat()  # new content, same size and mtime: the content hash decides again
    model = _model()
    with torch.no_grad():
        model.score_fr.weight.mul_(2)
    info = CheckpointInfo(arch=model.arch, model_kwargs=model_kwargs(model), classes=["bg", "a", "b", "c"])
    save_checkpoint(checkpoint.with_suffix(""), model, info)
    os.utime(checkpoint, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    Segmenter(checkpoint, engine="auto").predict(_image())
    assert measured == [64, 256, 64]
    monkeypatch.setattr(auto_mod, "fingerprint", lambda device: {**fingerprint(device), "id": "another-machine"})
    Segmenter(checkpoint, engine="auto").predict(_image())
    assert measured == [64, 256, 64, 64]


def test_the_accuracy_guard_refuses_a_fast_precision_that_changes_labels(
    checkpoint, always_decide, monkeypatch
) -> None:
    _torch_only(monkeypatch)

    class FastButWrong(torch.nn.Module):
        def forward(self, x):
            time_cheap = torch.zeros(x.shape[0], 4, *x.shape[-2:])
            time_cheap[:, 3] = 1.0  # every pixel "c"
            return time_cheap

    real_build = auto_mod.build_runner
    monkeypatch.setattr(auto_mod, "build_runner",
                        lambda e, m, **kw: FastButWrong() if e == "torch-bf16" else real_build(e, m, **kw))  # fmt: skip
    monkeypatch.setattr(engines_mod, "has_bf16_units", lambda: True)
    seg = Segmenter(checkpoint, engine="auto")
    seg.predict(_image())
    (decision,) = seg.engine.decisions.values()
    assert decision.engine == "torch" and decision.agreement["torch-bf16"] < auto_mod.AGREEMENT
    assert "label agreement" in decision.skipped["torch-bf16"]


def test_agreement_counts_pixels_over_all_heads() -> None:
    a = torch.zeros(1, 2, 2, 2)
    a[:, 1, 0, 0] = 1  # one pixel of four is class 1
    b = torch.zeros(1, 2, 2, 2)
    assert agreement(a, b) == 0.75 and agreement({"x": a, "y": a}, {"x": b, "y": a}) == 0.875


def test_reduced_precisions_need_their_units(monkeypatch) -> None:
    monkeypatch.setattr(engines_mod, "has_bf16_units", lambda: False)
    monkeypatch.setattr(engines_mod, "has_int8_units", lambda: False)
    cpu, source = torch.device("cpu"), Path("m.safetensors")
    assert "no bf16 units" in engines_mod.eligible("torch-bf16", cpu, source=source)
    if HAS_ORT:
        assert "no int8" in engines_mod.eligible("onnxruntime-int8", cpu, source=source)
        assert engines_mod.eligible("onnxruntime", cpu, source=source) is None
    assert engines_mod.unavailable("torch-bf16", cpu, source=None) is None  # forcing it is allowed


@pytest.mark.skipif(not HAS_ORT, reason="needs the onnx extra")
@pytest.mark.parametrize("engine", ["onnxruntime", pytest.param("openvino", marks=pytest.mark.skipif(
    not HAS_OV, reason="needs the openvino extra"))])  # fmt: skip
def test_forced_fp32_engines_give_torch_labels(checkpoint, engine) -> None:
    images = [_image(i) for i in range(2)]
    want = Segmenter(checkpoint, engine="torch").predict_many(images)
    got = Segmenter(checkpoint, engine=engine).predict_many(images)
    assert all((g == w).mean() > 0.999 for g, w in zip(got, want, strict=True))


def test_exported_engines_need_a_checkpoint_file() -> None:
    seg = Segmenter(_model(), engine="onnxruntime")
    with pytest.raises(ConfigError, match="beside a checkpoint file"):
        seg.predict(_image())


def test_a_missing_extra_is_one_line_naming_it(monkeypatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "openvino" else real(name, *a))
    reason = engines_mod.unavailable("openvino-bf16", torch.device("cpu"), source=Path("m.safetensors"))
    assert reason == "needs openvino: pip install 'fcnseg[openvino]'"
    from fcnseg.bench import missing_extra

    assert missing_extra("openvino") == reason and missing_extra("eager") is None


def test_fcnseg_engine_variable_is_checked(monkeypatch) -> None:
    monkeypatch.setenv("FCNSEG_ENGINE", "tensorrt")
    with pytest.raises(ConfigError, match="FCNSEG_ENGINE='tensorrt'"):
        Segmenter(_model())
    monkeypatch.setenv("FCNSEG_ENGINE", "auto")
    assert Segmenter(_model()).engine.engine == "auto"


def test_eval_and_predict_take_the_engine_and_a_bad_variable_is_one_line(checkpoint, tmp_path, monkeypatch,
                                                                          capsys) -> None:  # fmt: skip
    from PIL import Image

    from fcnseg.cli.main import main

    assert main(["eval", "--checkpoint", str(checkpoint), "--engine", "torch-bf16", "--max-images", "2",
                 "--num-workers", "0"]) == 0  # fmt: skip
    assert "mean IU" in capsys.readouterr().out
    Image.fromarray(_image()).save(tmp_path / "x.png")
    monkeypatch.setenv("FCNSEG_ENGINE", "fastest")
    assert (
        main(["predict", "--checkpoint", str(checkpoint), str(tmp_path / "x.png"), "--out", str(tmp_path / "o")]) == 2
    )
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "FCNSEG_ENGINE='fastest'" in err


@pytest.mark.parametrize("junk", ["{not json", '{"entries": []}', '{"entries": {"k": {"decision": {"engine": 3}}}}'])
def test_a_damaged_cache_is_ignored_and_rewritten(checkpoint, always_decide, monkeypatch, junk) -> None:
    _torch_only(monkeypatch)
    seg = Segmenter(checkpoint, engine="auto")
    seg.engine.cache_path().write_text(junk)
    seg.predict(_image())
    entries = json.loads(seg.engine.cache_path().read_text())["entries"]
    assert any(e.get("decision", {}).get("engine") in engines_mod.ENGINES for e in entries.values())


def test_torch_bf16_on_the_cpu_is_a_bf16_copy_that_leaves_the_fp32_model_alone(checkpoint) -> None:
    seg = Segmenter(checkpoint, engine="torch-bf16")
    images = [_image(i) for i in range(2)]
    got = seg.predict_many(images)
    runner = seg.engine.runner("torch-bf16")
    assert next(runner.model.parameters()).dtype == torch.bfloat16
    assert all(p.dtype == torch.float32 for p in seg.model.parameters())
    want = Segmenter(checkpoint, engine="torch").predict_many(images)
    assert all((g == w).mean() > 0.98 for g, w in zip(got, want, strict=True))


@pytest.mark.parametrize("name", ["fcn32s_alexnet", "fcn32s_googlenet", "fcn8s_resnet18", "fcn8s_vgg16"])
def test_the_bf16_copy_runs_every_backbone_family(name: str) -> None:
    """AlexNet's and GoogLeNet's LRN has no bf16 CPU kernel: it runs in fp32 inside the bf16 copy."""
    model = fcnseg.get_model(name, num_classes=3, width=0.125).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        out = engines_mod.CastModel(model, torch.bfloat16)(x)
        assert out.dtype == torch.float32 and out.shape == model(x).shape


@pytest.mark.skipif(not HAS_ORT, reason="needs the onnx extra")
def test_fp32_weights_are_dropped_while_only_an_exported_engine_runs_and_read_back_when_needed(
    checkpoint, always_decide, monkeypatch
) -> None:
    """A Segmenter that loaded its checkpoint keeps no fp32 copy once every size runs on an exported engine
    (the RSS of ``auto`` in fcnseg bench), and gets it back from the file, unchanged, for a PyTorch engine."""
    reference = Segmenter(checkpoint, engine="torch").predict(_image())
    _torch_only(monkeypatch, allowed=("onnxruntime",))
    monkeypatch.setattr(AutoEngine, "_time", lambda self, engines, x, **kw: {e: 1.0 if e == "torch" else 0.1
                                                                              for e in engines})  # fmt: skip
    seg = Segmenter(checkpoint, engine="auto")
    labels = seg.predict(_image())
    assert seg.engine.decisions[64].engine == "onnxruntime" and seg.engine.released
    assert all(p.is_meta for p in seg.model.parameters()) and set(seg.engine._runners) == {"onnxruntime"}
    assert (labels == reference).mean() > 0.999
    again = seg.predict(_image())  # the exported engine keeps running without the weights
    assert np.array_equal(again, labels)
    torch_labels = seg.engine.runner("torch")(torch.zeros(1, 3, 32, 32))  # PyTorch again: read back
    assert not seg.engine.released and not any(p.is_meta for p in seg.model.parameters())
    assert torch_labels.shape == (1, 4, 32, 32)
    fresh = Segmenter(checkpoint, engine="torch").model
    for (name, a), b in zip(seg.model.state_dict().items(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_a_bare_model_is_never_dropped(checkpoint, always_decide, monkeypatch) -> None:
    """Weights that may differ from any file (a model handed over in memory) are kept."""
    _torch_only(monkeypatch, allowed=())
    seg = Segmenter(_model(), engine="auto", source=checkpoint)
    seg.predict(_image())
    assert not seg.engine.reloadable and not seg.engine.released
