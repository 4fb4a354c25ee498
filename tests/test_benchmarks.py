"""The benchmark scripts stay runnable: each imports, and the training benchmark's loops run on a tiny net."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(p.stem for p in BENCH.glob("*.py")))
def test_benchmark_script_imports(name: str) -> None:
    assert callable(_load(name).main)


@pytest.mark.slow
def test_bench_train_compares_three_loops_on_the_same_work() -> None:
    """Each loop kind runs in its own process on the tiny workload; the ratios are of the medians."""
    row = _load("bench_train")._compare("tiny", 2, 1)
    for key in ("plain_images_per_s", "fcnseg_images_per_s", "amp_images_per_s", "fcnseg_peak_rss_mb"):
        assert row[key] > 0
    assert row["ratio"] == pytest.approx(row["fcnseg_images_per_s"] / row["plain_images_per_s"])
    assert row["amp_ratio"] == pytest.approx(row["amp_images_per_s"] / row["plain_images_per_s"])


@pytest.mark.slow
def test_first_mask_benchmark_times_torch_and_auto_side_by_side(tmp_path) -> None:
    import json
    import subprocess
    import sys

    out = tmp_path / "first.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH / "bench_first_mask.py"),
            "--model",
            "fcn8s_resnet18",
            "--counts",
            "1",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    one = result["jobs"]["1"]
    assert {"torch", "auto, fresh cache", "auto, warm cache", "auto fresh / torch"} <= set(one)
    assert set(result["startup"]) == {"fcnseg --help", "fcnseg predict --help", "argument error"}
