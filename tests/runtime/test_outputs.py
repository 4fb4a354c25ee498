"""Issue 30 for what evaluation writes: ``metrics.json`` is strict JSON (null for an absent class), and ``eval --out``
never writes over a run's own outputs unless ``--overwrite``. Each case failed before its fix."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fcnseg.cli.main import main
from fcnseg.runtime.heads import write_metrics
from tests.badinput import no_traceback


def test_metrics_json_has_null_for_an_absent_class(tmp_path) -> None:
    hist = np.array([[5, 0, 0], [0, 3, 0], [0, 0, 0]])  # class 2 never appears: its IU is undefined
    metrics = {
        "": {
            "pixel_accuracy": 1.0,
            "mean_accuracy": 1.0,
            "mean_iu": 1.0,
            "fw_iu": 1.0,
            "iu": [1.0, 1.0, float("nan")],
            "accuracy": [1.0, 1.0, float("nan")],
            "confusion": hist.tolist(),
        }
    }
    path = write_metrics(tmp_path, metrics, {"": ["bg", "a", "b"]})
    data = json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"bare {c} in metrics.json"))
    assert data["iu"] == [1.0, 1.0, None] and data["accuracy"][2] is None


def test_eval_out_never_writes_over_a_runs_metrics(tmp_path, checkpoint, capsys) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_text('{"mean_iu": 0.63}')  # the training run's own numbers
    argv = ["eval", "--checkpoint", str(checkpoint), "--max-images", "2", "--grid", "0", "--out", str(run)]
    code = main(argv)
    err = capsys.readouterr().err
    no_traceback(err, code)
    assert code == 2 and "metrics.json: a file this command did not write" in err, err
    assert (run / "metrics.json").read_text() == '{"mean_iu": 0.63}'
    assert main([*argv, "--overwrite"]) == 0
    assert json.loads((run / "metrics.json").read_text())["mean_iu"] != 0.63
    out = tmp_path / "eval"
    assert main([*argv[:-1], str(out)]) == 0 and main([*argv[:-1], str(out)]) == 0  # its own outputs: rewritten
