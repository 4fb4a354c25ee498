"""The fast paths: optimized inference equals the model, the benchmark reports what the issue asks,
channels_last training equals contiguous training."""

from __future__ import annotations

import csv
import json

import pytest
import torch

import fcnseg
from fcnseg.cli.main import main
from fcnseg.errors import ConfigError
from fcnseg.inference import Segmenter, optimize_for_inference
from tests.helpers import tiny


def _model(name: str = "fcn8s_vgg16") -> torch.nn.Module:
    torch.manual_seed(0)
    model = fcnseg.get_model(name, num_classes=5, width=1 / 16)
    with torch.no_grad():
        for n in model.score_layer_names():
            getattr(model, n).weight.normal_()
    return model.eval()


@pytest.mark.parametrize("name", ["fcn8s_vgg16", "fcn8s_resnet18", "fcn32s_alexnet"])
def test_channels_last_fp32_path_gives_the_model_output(name: str) -> None:
    model = _model(name)
    x = torch.randn(2, 3, 61, 47)
    with torch.inference_mode():
        ref = model(x)
    out = optimize_for_inference(model)(x)
    assert out.is_contiguous() and out.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4 * float(ref.abs().max()))


def test_bf16_path_agrees_on_labels_and_segmenter_takes_it() -> None:
    model = _model()
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        ref = model(x).argmax(1)
    fast = optimize_for_inference(model, dtype="bfloat16")
    assert float((fast(x).argmax(1) == ref).float().mean()) > 0.95
    assert Segmenter(fast).predict(torch.rand(3, 30, 40)).shape == (30, 40)


def test_cuda_graphs_off_cuda_and_bad_dtypes_are_refused() -> None:
    with pytest.raises(ConfigError, match="CUDA graphs need a CUDA device"):
        optimize_for_inference(_model(), cuda_graphs=True)
    with pytest.raises(ConfigError, match="bfloat16, float16"):
        optimize_for_inference(_model(), dtype="int4")


@pytest.mark.slow
def test_compiled_path_gives_the_model_output() -> None:
    model = _model("fcn32s_vgg16")
    x = torch.randn(1, 3, 48, 48)
    with torch.inference_mode():
        ref = model(x)
    out = optimize_for_inference(model, compile=True)(x)
    torch.testing.assert_close(out, ref, rtol=1e-3, atol=1e-3 * float(ref.abs().max()))


@pytest.mark.slow
def test_bench_reports_floor_ratio_and_memory(tmp_path, capsys) -> None:
    out = tmp_path / "bench.json"
    paths = ["torch", "torch-bf16", "onnxruntime", "onnxruntime-int8", "openvino-bf16", "openvino-int8", "auto"]
    args = ["bench", "--models", "fcn32s_alexnet", "--paths", *paths, "--size", "64", "--repeats", "1"]
    assert main([*args, "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "ratio to floor" in printed and "AVX" in printed  # the CPU's ISA is reported
    results = json.loads(out.read_text())
    assert results["gemm_gflops"] == max(results["gemm_gflops_by_library"].values()) > 0
    assert {"fp32", "bf16", "int8"} <= set(results["floors"])
    for path in paths:
        key = f"fcn32s_alexnet/{path}"
        if key in results["skipped"]:  # a missing extra: one line saying which
            assert f"skipped {key}: needs" in printed
            continue
        r = results["models"][key]
        assert {"gflop", "latency_s", "gflops_per_s", "floor_s", "ratio_to_floor", "peak_rss_mb", "precision"} <= set(r)
        floor = results["floors"][r["precision"]]["gflops"]  # each path against its own precision's floor
        assert r["floor_s"] == pytest.approx(r["gflop"] / floor)
        assert r["ratio_to_floor"] == pytest.approx(r["latency_s"] / r["floor_s"]) and r["peak_rss_mb"] > 0
    assert results["models"]["fcn32s_alexnet/torch-bf16"]["precision"] == "bf16"
    assert results["models"]["fcn32s_alexnet/auto"]["engine"]


def test_bench_skips_a_path_whose_extra_is_missing_with_one_line(monkeypatch, capsys) -> None:
    import importlib.util

    import fcnseg.floors

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "openvino" else real(name, *a))
    monkeypatch.setattr(fcnseg.floors, "floors", lambda: {"fp32": {"gflops": 100.0, "library": "x", "by_library": {}}})
    assert main(["bench", "--models", "fcn32s_alexnet", "--paths", "openvino", "--size", "64", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "skipped fcn32s_alexnet/openvino: needs openvino: pip install 'fcnseg[openvino]'" in out
    assert "Traceback" not in out


def test_floors_measure_each_precision() -> None:
    from fcnseg.floors import floors

    f = floors(128, 1)
    assert {"fp32", "bf16", "int8"} <= set(f) and all(v["gflops"] > 0 for v in f.values())
    assert all(v["gflops"] == max(v["by_library"].values()) for v in f.values())


def _losses(run_dir) -> list[float]:
    with (run_dir / "log.csv").open() as f:
        return [float(r["loss"]) for r in csv.DictReader(f) if r["loss"]]


def test_channels_last_training_matches_contiguous(tmp_path) -> None:
    extra = ("model.name=fcn8s_vgg16", "model.dropout=0.0", "train.max_iter=4", "train.eval_every=4")
    fcnseg_default = fit_losses(tmp_path / "nhwc", *extra)
    plain = fit_losses(tmp_path / "nchw", *extra, "train.channels_last=false")
    torch.testing.assert_close(torch.tensor(fcnseg_default), torch.tensor(plain), rtol=1e-4, atol=1e-5)


def fit_losses(run_dir, *extra: str) -> list[float]:
    from fcnseg.train.trainer import fit

    fit(tiny(*extra), run_dir, progress=False)
    return _losses(run_dir)


def test_gemm_floor_is_the_best_library_rate() -> None:
    """MKL runs far below peak on AMD CPUs; the floor takes the best of torch's BLAS, oneDNN and onnxruntime."""
    from fcnseg.bench import gemm_rates

    rates = gemm_rates(256, 3)
    assert {"torch.mm", "oneDNN", "onnxruntime"} <= set(rates) and min(rates.values()) > 0


def test_bench_children_run_the_module_that_holds_their_functions() -> None:
    """The restructure moved the measuring functions into ``bench/measure.py`` while the children still ran
    ``python -m fcnseg.bench.run``, which prints nothing: every path failed with an IndexError."""
    import importlib

    measure = importlib.import_module("fcnseg.bench.measure")
    run = importlib.import_module("fcnseg.bench.run")  # the module (fcnseg.bench.run the attribute is its function)
    assert run._MEASURE == measure.__name__
    assert all(callable(getattr(measure, f)) for f in ("measure", "measure_auto", "prepare"))
