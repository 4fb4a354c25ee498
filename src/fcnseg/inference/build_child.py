"""Building and probing exported engines in a child process, where a crash cannot take the user's job down.

``python -m fcnseg.inference.build_child TASK SPEC_JSON`` with ``TASK``:

* ``export`` — rebuild the model from its file (``spec``: arch, build arguments, file), export it to ONNX with its
  weights beside it (``model.onnx`` + ``model.onnx.data`` in ``spec["out"]``) and PyTorch's output on a fixed
  input (``reference.npz``);
* ``onnx-int8`` — the same, quantized by onnxruntime (static QDQ) on the calibration images in ``spec["calibration"]``
  (an ``.npz`` of ``(C, H, W)`` arrays);
* ``openvino-int8`` — the fp32 graph at ``spec["onnx"]`` quantized by NNCF into OpenVINO IR (``model.xml``/``.bin``);
* ``probe`` — load ``spec["graph"]`` in engine ``spec["engine"]``'s runtime and run it once on zeros of
  ``spec["shape"]`` (torch is not imported; OpenVINO compiles it with dynamic sizes, as the engine does); with
  ``spec["reference"]``, also check its fp32 output against PyTorch's on the reference input (within 1e-3 of
  the score range).

Exit 0 and one JSON line on success; otherwise the error on stderr. Out of memory, an address-space limit or a
crash inside a runtime ends this process, not the caller's (:func:`run_child` reports it).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["run_child"]


def _model(spec: dict[str, Any]) -> Any:
    from ..runtime.checkpoint import build_loaded, load_state_dict_file

    return build_loaded(spec["arch"], spec["kwargs"], load_state_dict_file(spec["file"]), spec["file"]).eval()


def _calibration(spec: dict[str, Any]) -> list[Any]:
    import numpy as np
    import torch

    with np.load(spec["calibration"]) as images:
        return [torch.from_numpy(images[k]) for k in images.files]


def export(spec: dict[str, Any]) -> dict[str, Any]:
    """The ONNX graph, and PyTorch's output on a fixed input beside it (``reference.npz``): each engine's probe
    compares its own output with it on first use (:func:`probe`), so the graph is checked by the runtime that runs it
    (a second runtime only to check it cost 6 s of a 17 s build for fcn8s_vgg16)."""
    import numpy as np
    import torch

    from ..export.onnx import export_onnx
    from ..export.runtime import graph_io

    out = Path(spec["out"]) / "model.onnx"
    model = _model(spec)
    export_onnx(model, out, check_sizes=(), external_data=True)
    x = torch.randn(2, graph_io(model).in_channels, *REFERENCE_SIZE, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        ref = model(x)
    outs = list(ref.values()) if isinstance(ref, dict) else [ref]
    np.savez(out.parent / "reference.npz", x=x.numpy(), **{f"out{i}": o.float().numpy() for i, o in enumerate(outs)})
    return {"main": out.name}


def onnx_int8(spec: dict[str, Any]) -> dict[str, Any]:
    from ..export.int8 import quantize_int8

    out = Path(spec["out"]) / "model.int8.onnx"
    quantize_int8(_model(spec), out, _calibration(spec))
    return {"main": out.name}


def openvino_int8(spec: dict[str, Any]) -> dict[str, Any]:
    from ..export.openvino_int8 import quantize_openvino

    out = Path(spec["out"]) / "model.xml"
    agreement = quantize_openvino(spec["onnx"], out, _calibration(spec), spec.get("ignored", []))
    return {"main": out.name, **agreement}


#: height and width of the input the exported graph's reference output is kept for
REFERENCE_SIZE = (64, 64)


def _compare(outs: list[Any], refs: list[Any]) -> None:
    """Raise when ``outs`` differ from the graph's reference outputs ``refs`` by over 1e-3 of their score range."""
    import numpy as np

    for r, o in zip(refs, outs, strict=True):
        if o.shape != r.shape:
            raise ValueError(f"output {o.shape} where PyTorch gives {r.shape}")
        span = float(r.max() - r.min()) or 1.0
        diff = float(np.abs(o - r).max())
        if not diff <= 1e-3 * span:
            raise ValueError(f"differs from PyTorch by {diff:.3g} (score range {span:.3g})")


def probe(spec: dict[str, Any]) -> dict[str, Any]:
    """Load and run the graph once (NumPy and the engine's runtime only); with ``spec["reference"]``, the graph
    run at full precision must also give PyTorch's output on the reference input."""
    import numpy as np

    x = np.zeros(spec["shape"], np.float32)
    checked, refs = None, []
    if spec.get("reference"):  # read once, whole: the input and PyTorch's outputs on it
        with np.load(spec["reference"]) as ref:
            checked, refs = ref["x"], [ref[f"out{i}"] for i in range(len(ref.files) - 1)]
    if spec["engine"].startswith("onnxruntime"):
        import onnxruntime as ort

        session = ort.InferenceSession(spec["graph"], providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        session.run(None, {name: x})
        if checked is not None:
            _compare(session.run(None, {name: checked}), refs)
        return {}
    import openvino as ov

    core = ov.Core()
    model = core.read_model(spec["graph"])
    model.reshape({model.inputs[0].any_name: [-1, x.shape[1], -1, -1]})  # as OpenVinoModule compiles it
    hint = spec.get("hint", "f32")
    if checked is not None:
        full = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        result = full(checked)
        _compare([result[o] for o in full.outputs], refs)
    core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY"})(x)
    return {}


TASKS = {"export": export, "onnx-int8": onnx_int8, "openvino-int8": openvino_int8, "probe": probe}


def run_child(task: str, spec: dict[str, Any], *, timeout: float | None = None) -> dict[str, Any]:
    """Run ``task`` in a child process; its JSON result plus ``seconds``.

    Raises:
        ExportError: the child failed, was killed (out of memory, a signal) or timed out — with its last words.
    """
    from ..errors import ExportError

    started = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", __name__, task, json.dumps(spec)], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise ExportError(f"{task}: took over {timeout:.0f} s; stopped") from None
    if proc.returncode != 0:
        how = f"killed by signal {-proc.returncode}" if proc.returncode < 0 else f"exit {proc.returncode}"
        last = [line for line in proc.stderr.strip().splitlines() if line.strip()][-1:] or ["no message"]
        raise ExportError(f"{task} failed in its own process ({how}): {last[0][:300]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return {**result, "seconds": time.perf_counter() - started}


def main(argv: list[str]) -> int:
    import logging
    import warnings

    logging.disable(logging.WARNING)  # the libraries' own chatter stays in this process
    warnings.simplefilter("ignore")
    task, spec = argv[0], json.loads(argv[1])
    result = TASKS[task](spec)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
