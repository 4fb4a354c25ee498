"""benchmarks/bench_gpu.py: its CPU smoke run measures every section and writes the JSON and the table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_gpu.py"


@pytest.mark.slow
def test_gpu_benchmark_smoke_run_on_the_cpu(tmp_path) -> None:
    out = tmp_path / "gpu.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--device", "cpu", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    r = json.loads(out.read_text())
    for variant in ("fp32", "tf32", "bf16", "bf16+channels_last"):
        for batch in (1, 2):
            assert r["inference"][f"{variant}/batch{batch}"] > 0
    assert r["inference"]["bf16+channels_last+compiled"] == "skipped (smoke run)"
    assert r["predict"]["images"] == 4 and r["predict"]["images_per_s"] > 0
    for recipe, batch in (("reference", 1), ("modern", 2)):
        t = r[f"train {recipe}"]
        assert t["batch_per_process"] == batch and t["images_per_s"] > 0 and 0 <= t["data_wait_share"] < 1
    assert r["evaluation"]["images"] == 6 and r["evaluation"]["images_per_s"] > 0
    assert "needs 2 CUDA devices" in r["two_processes"]["skipped"]
    assert "| fcnseg predict end to end |" in proc.stdout and "| evaluation |" in proc.stdout
