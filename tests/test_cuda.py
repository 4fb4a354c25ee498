"""On a CUDA device (skipped, saying so, without one): training, evaluation and inference there agree with the CPU.

What is exact on CUDA: a resumed run restores the CPU and CUDA generators and the sampler's position, so
it sees the same images, augmentations and dropout masks as the uninterrupted run. Its losses are equal
to the last bit only where the kernels are deterministic: cuDNN picks convolution algorithms per process
(``cudnn.benchmark`` is off in training, but the default heuristics may still choose a non-deterministic
backward), and the transposed-convolution / scatter backward kernels accumulate with atomics. With
``torch.use_deterministic_algorithms(True)`` and ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` the resume is exact;
without, it agrees to float rounding (checked here at 1e-5 relative).
"""

from __future__ import annotations

import csv

import pytest
import torch

import fcnseg
from fcnseg.data import SyntheticShapes
from fcnseg.data.transforms import eval_transforms
from fcnseg.inference import optimize_for_inference
from fcnseg.preprocessing import IMAGENET
from fcnseg.runtime.evaluation import evaluate
from fcnseg.train.trainer import fit
from tests.helpers import tiny

pytestmark = pytest.mark.cuda


def _losses(run) -> dict[int, float]:
    with (run / "log.csv").open() as f:
        return {int(r["step"]): float(r["loss"]) for r in csv.DictReader(f) if r["loss"]}


def test_training_on_cuda_resumes_to_the_same_losses(tmp_path) -> None:
    full, part = tmp_path / "full", tmp_path / "part"
    fit(tiny("train.device=cuda"), full, progress=False)
    fit(tiny("train.device=cuda", "train.max_iter=3"), part, progress=False)
    fit(tiny("train.device=cuda"), part, resume=True, progress=False)
    a, b = _losses(full), _losses(part)
    torch.testing.assert_close(torch.tensor([b[s] for s in a]), torch.tensor(list(a.values())), rtol=1e-5, atol=1e-7)


def test_evaluation_on_cuda_equals_the_cpu() -> None:
    model = fcnseg.get_model("fcn8s_resnet18", num_classes=9, width=1 / 16).eval()
    ds = SyntheticShapes(6, 64, "val", transforms=eval_transforms(IMAGENET))
    cpu = evaluate(model, ds, 9, batch_size=4)[""]
    gpu = evaluate(model.cuda(), ds, 9, device="cuda", batch_size=4)[""]
    assert abs(gpu["mean_iu"] - cpu["mean_iu"]) < 1e-3


def test_bf16_inference_leaves_no_process_wide_setting() -> None:
    before = torch.backends.cudnn.benchmark
    model = fcnseg.get_model("fcn8s_vgg16", num_classes=5, width=1 / 16)
    fast = optimize_for_inference(model, device="cuda")
    assert fast.dtype is torch.bfloat16 or not torch.cuda.is_bf16_supported()
    out = fast(torch.randn(2, 3, 100, 130, device="cuda"))
    assert out.shape == (2, 5, 100, 130) and out.dtype == torch.float32
    assert torch.backends.cudnn.benchmark == before
