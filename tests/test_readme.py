"""The README's Python section runs as written (with a small checkpoint standing in for the demo's)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import fcnseg
from fcnseg.data import SyntheticShapes
from fcnseg.runtime.checkpoint import CheckpointInfo, model_kwargs, save_checkpoint

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_section() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Python: load a checkpoint, predict, score", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_python_section_loads_predicts_and_scores(tmp_path) -> None:
    code = _python_section()
    assert "fcnseg.load_checkpoint" in code and "seg.predict" in code and "ConfusionMatrix" in code
    classes = list(SyntheticShapes.classes)
    model = fcnseg.get_model("fcn8s_vgg16", num_classes=len(classes), width=1 / 16, pad100=False)
    info = CheckpointInfo(arch="fcn8s_vgg16", model_kwargs=model_kwargs(model), classes=classes)
    ckpt = save_checkpoint(tmp_path / "demo", model, info)
    code = code.replace('"runs/demo/checkpoints/best.safetensors"', repr(str(ckpt)))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    printed = out.getvalue()
    for key in ("pixel_accuracy", "mean_accuracy", "mean_iu", "fw_iu", "'iu'"):
        assert key in printed, printed
