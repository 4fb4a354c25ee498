"""ONNX export with dynamic batch, height and width, checked against onnxruntime on the spot."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import ExportError
from ..io import atomic_write
from .runtime import graph_io

__all__ = ["check_onnx", "export_onnx"]


def export_onnx(
    model: nn.Module,
    path: str | Path,
    *,
    sample_size: tuple[int, int] = (67, 91),
    check_sizes: tuple[tuple[int, int], ...] = ((64, 64), (97, 53), (33, 121)),
    opset: int = 18,
    upsampling: str = "auto",
    external_data: bool = False,
) -> dict[str, float]:
    """Export ``model`` to ``path`` (input ``image`` N×C×H×W, output ``scores`` N×K×H×W, all dynamic).

    The exported graph is run by onnxruntime on ``check_sizes`` (odd sizes included) and compared with
    PyTorch; the file is written only if every difference is within 1e-3 of the score range (no sizes: the caller
    checks it otherwise — the engine cache's probe does).

    Args:
        upsampling: how the fixed bilinear layers are written (:func:`fcnseg.models.set_upsampling`):
            ``auto``/``grouped`` (a ``K``-group ConvTranspose), ``dense`` (Caffe's ``K×K`` ConvTranspose)
            or ``resize`` (Pad + Resize + Slice where exact). The check compares the file with the
            model as it was, so every form is verified against the same reference.
        external_data: keep the weights in ``PATH.data`` beside the graph; onnxruntime then maps them
            instead of copying them out of the protobuf, which lowers its peak memory at load by the
            model's size (fcn8s_vgg16: 2.2 → 1.7 GB).

    Returns:
        ``{"max_abs_diff": …, "score_range": …}`` over the checked sizes.

    Raises:
        ExportError: the exporter failed, or onnxruntime disagrees with PyTorch.
    """
    model = model.eval()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp) / Path(path).name  # with external data, torch names the weights NAME.data
        _export(
            model, tmp_path, sample_size=sample_size, opset=opset, upsampling=upsampling, external_data=external_data
        )
        report = check_onnx(model, tmp_path, check_sizes) if check_sizes else {}
        if external_data:  # the weights first, the graph that names them last
            data = tmp_path.with_name(tmp_path.name + ".data")
            with atomic_write(Path(path).with_name(data.name)) as f:
                f.write(data.read_bytes())
        with atomic_write(path) as f:
            f.write(tmp_path.read_bytes())
    return report


def _export(
    model: nn.Module, out: Path, *, sample_size: tuple[int, int], opset: int, upsampling: str, external_data: bool
) -> None:
    """``torch.onnx.export`` (dynamo) of ``model`` to ``out`` with symbolic batch, height and width; the model's
    upsampling form and memory layout are given back as they came."""
    from ..models.layers import BilinearUpsample, set_upsampling

    io = graph_io(model)
    device = next(model.parameters()).device  # traced where the model is (the graph is the same)
    x = torch.randn(1, io.in_channels, *sample_size, device=device)
    dims = {
        0: torch.export.Dim("batch", min=1, max=64),
        2: torch.export.Dim("height", min=1, max=8192),
        3: torch.export.Dim("width", min=1, max=8192),
    }
    layers = [m for m in model.modules() if isinstance(m, BilinearUpsample)]
    before = [m.mode for m in layers]
    # torch.export specializes on channels_last strides (guards batch ≤ 2, H ≥ 17 …): export the NCHW layout,
    # and give the model back in the layout it came in (the torch-bf16 engine runs it channels_last)
    nhwc = any(p.dim() == 4 and not p.is_contiguous() for p in model.parameters())
    if nhwc:
        model.to(memory_format=torch.contiguous_format)
    try:
        try:
            set_upsampling(model, upsampling)
        except ValueError as e:
            raise ExportError(f"--upsampling {upsampling}: {e}") from None
        program = torch.onnx.export(
            model,
            (x,),
            dynamic_shapes={"x": dims},
            input_names=["image"],
            output_names=io.output_names,
            opset_version=opset,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
        program.save(str(out), external_data=external_data)
    except ExportError:
        raise
    except Exception as e:  # the exporter raises many types; report them as one
        raise ExportError(f"ONNX export of {io.arch} failed: {type(e).__name__}: {e}") from None
    finally:
        for m, mode in zip(layers, before, strict=True):
            m.mode = mode
        if nhwc:
            model.to(memory_format=torch.channels_last)


def check_onnx(model: nn.Module, path: str | Path, sizes: tuple[tuple[int, int], ...]) -> dict[str, float]:
    """Run the ONNX file with onnxruntime and compare with ``model`` at each size."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    c = graph_io(model).in_channels
    worst, score_range = 0.0, 0.0
    for h, w in sizes:
        x = torch.randn(2, c, h, w)
        with torch.inference_mode():
            ref = model(x.to(next(model.parameters()).device))
        refs = [r.float().cpu() for r in (ref.values() if isinstance(ref, dict) else [ref])]
        outs = session.run(None, {session.get_inputs()[0].name: x.numpy()})
        for r, o in zip(refs, outs, strict=True):
            if o.shape != tuple(r.shape):
                raise ExportError(f"{path}: onnxruntime output {o.shape} at input {h}×{w}, PyTorch {tuple(r.shape)}")
            rng = float(r.max() - r.min()) or 1.0
            diff = float(np.abs(o - r.numpy()).max())
            score_range = max(score_range, rng)
            worst = max(worst, diff)
            if diff > 1e-3 * rng:
                raise ExportError(
                    f"{path}: onnxruntime differs from PyTorch by {diff:.3g} at {h}×{w} (score range {rng:.3g})"
                )
    return {"max_abs_diff": worst, "score_range": score_range}
