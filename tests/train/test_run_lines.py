"""What a run says when its output is not a terminal: a line when it starts, one per evaluation with the figures,
one when it ends — and no carriage-return progress bar in the file; ``--quiet`` keeps these lines."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.helpers import TINY


def test_train_into_a_file_writes_lines_not_a_progress_bar(tmp_path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    (tmp_path / "tiny.yaml").write_text("{}\n")
    args = [
        sys.executable,
        "-m",
        "fcnseg",
        "train",
        str(tmp_path / "tiny.yaml"),
        "--out",
        str(tmp_path / "run"),
        "--set",
        *TINY,
        "train.max_iter=6",
        "train.eval_every=3",
        "train.checkpoint_every=3",
        "eval.grid_images=0",
    ]
    with open(tmp_path / "log.txt", "w") as log:  # stderr is a file, as in `fcnseg train … 2> log`
        assert subprocess.run(args, stdout=log, stderr=log, env=env, timeout=600).returncode == 0
    text = (tmp_path / "log.txt").read_text()
    assert "\r" not in text  # no progress-bar updates in a file
    lines = [line for line in text.splitlines() if line.startswith("fcnseg: ")]
    assert lines[0].startswith("fcnseg: training: fcn8s_resnet18 on synthetic (64 images), 6 steps of batch 2")
    assert [line.split(":")[1].strip() for line in lines if line.startswith("fcnseg: step ")] == [
        "step 3/6",
        "step 6/6",
    ]
    assert any("validation mean IU" in line for line in lines)
    assert lines[-1].startswith("fcnseg: finished: ran its 6 steps")
    args[args.index(str(tmp_path / "run"))] = str(tmp_path / "quiet")
    quiet = subprocess.run([*args, "--quiet"], capture_output=True, text=True, env=env, timeout=600)
    assert "fcnseg: training: " in quiet.stderr and "fcnseg: finished: " in quiet.stderr


def test_predict_and_eval_into_a_file_write_no_progress_bar(tmp_path) -> None:
    """``fcnseg predict`` and ``eval`` with stderr in a file: their results, no carriage-return bar updates."""
    import numpy as np
    from PIL import Image

    import fcnseg
    from fcnseg.runtime.checkpoint import CheckpointInfo, model_kwargs, save_checkpoint

    model = fcnseg.get_model("fcn8s_resnet18", num_classes=9, width=1 / 16)
    info = CheckpointInfo(arch="fcn8s_resnet18", model_kwargs=model_kwargs(model), config={"data": {"name": "x"}})
    ckpt = save_checkpoint(tmp_path / "m", model, info)
    (tmp_path / "in").mkdir()
    for i in range(3):
        Image.fromarray(np.full((24, 32, 3), 40 * i, np.uint8)).save(tmp_path / "in" / f"{i}.png")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    runs = {
        "predict": ["predict", "--checkpoint", str(ckpt), str(tmp_path / "in"), "--out", str(tmp_path / "out")],
        "eval": ["eval", "--checkpoint", str(ckpt), "--dataset", "synthetic", "--max-images", "3"],
    }
    for name, argv in runs.items():
        with open(tmp_path / f"{name}.txt", "w") as log:
            code = subprocess.run([sys.executable, "-m", "fcnseg", *argv], stdout=log, stderr=log, env=env, timeout=600)
        text = (tmp_path / f"{name}.txt").read_text()
        assert code.returncode == 0 and "\r" not in text and f"{name}:" not in text.replace("fcnseg ", ""), text
