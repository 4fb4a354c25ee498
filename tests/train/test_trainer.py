"""fit(): learns, resumes exactly, is deterministic, stages 32s → 16s, stops on NaN, writes its outputs."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from fcnseg.errors import CheckpointError
from fcnseg.runtime.checkpoint import load_checkpoint
from fcnseg.train.build import init_from
from fcnseg.train.distributed import DistInfo
from fcnseg.train.trainer import StepSampler, TrainingDiverged, fit
from tests.helpers import tiny


def _losses(run_dir) -> dict[int, float]:
    with (run_dir / "log.csv").open() as f:
        return {int(r["step"]): float(r["loss"]) for r in csv.DictReader(f) if r["loss"]}


@pytest.mark.slow
def test_tiny_model_learns_well_above_chance(tmp_path) -> None:
    """600 steps on 60 scenes, scored on 30 of them: the loop must fit its data.

    Predicting background everywhere scores mean IU ≈ 0.10 here (background IU ≈ 0.9, eight shape classes 0);
    the loop reaches ≈ 0.6. Generalising to unseen scenes takes far longer from scratch (see README).
    """
    cfg = tiny(
        "train.max_iter=600",
        "train.eval_every=600",
        "train.checkpoint_every=600",
        "model.width=0.25",
        "data.options={n: 60, size: 64}",
        "data.val_options={n: 30}",
        "data.val_split=train",
        "data.batch_size=8",
        "train.lr=0.05",
        "train.schedule=poly",
    )
    metrics = fit(cfg, tmp_path / "run", progress=False)[""]
    assert metrics["pixel_accuracy"] > 0.95
    assert metrics["mean_iu"] > 0.4


def test_outputs_written(tmp_path) -> None:
    run = tmp_path / "run"
    metrics = fit(tiny(), run, progress=False)[""]
    for name in (
        "config.yaml",
        "log.csv",
        "metrics.json",
        "curves.png",
        "grid.png",
        "confusion.png",
        "checkpoints/last.safetensors",
        "checkpoints/last.state-00000006.pt",
        "checkpoints/best.safetensors",
    ):
        assert (run / name).is_file(), name
    assert set(json.loads((run / "metrics.json").read_text())) >= {
        "pixel_accuracy",
        "mean_accuracy",
        "mean_iu",
        "fw_iu",
        "iu",
    }
    assert 0 <= metrics["mean_iu"] <= 1
    _model, info = load_checkpoint(run / "checkpoints" / "last.safetensors")
    assert info.step == 6 and info.arch == "fcn8s_resnet18" and info.classes[0] == "background"
    assert info.preprocessing["scale"] == pytest.approx(1 / 255)
    assert (run / "tb").is_dir() and any((run / "tb").iterdir())


def test_same_config_twice_gives_identical_metrics(tmp_path) -> None:
    a = fit(tiny(), tmp_path / "a", progress=False)[""]
    b = fit(tiny(), tmp_path / "b", progress=False)[""]
    assert a["iu"] == b["iu"] or all((x != x and y != y) or x == y for x, y in zip(a["iu"], b["iu"], strict=True))
    assert _losses(tmp_path / "a") == _losses(tmp_path / "b")


def test_resume_continues_exactly(tmp_path) -> None:
    """Stop after step 3 (checkpoint), resume to 6: the losses equal an uninterrupted run's, bit for bit.

    Exact on the CPU (pinned by the config). On CUDA the generators (CPU and every rank's CUDA one) and the
    sampler position are restored just as exactly, but the losses are bitwise equal only with deterministic
    kernels (``torch.use_deterministic_algorithms(True)``, ``CUBLAS_WORKSPACE_CONFIG=:4096:8``): cuDNN's
    default algorithms and the atomics in transposed-convolution / scatter backward kernels round
    differently from run to run. ``tests/test_cuda.py`` checks the CUDA resume to 1e-5 relative.
    """
    full = tmp_path / "full"
    fit(tiny("model.width=0.125"), full, progress=False)
    part = tmp_path / "part"
    fit(tiny("model.width=0.125", "train.max_iter=3"), part, progress=False)
    fit(tiny("model.width=0.125"), part, resume=True, progress=False)
    full_losses, part_losses = _losses(full), _losses(part)
    assert set(full_losses) == {2, 4, 6} and set(part_losses) == {2, 3, 4, 6}  # the stopped run also logged step 3
    assert {s: part_losses[s] for s in full_losses} == full_losses
    a, _ = load_checkpoint(full / "checkpoints" / "last.safetensors")
    b, _ = load_checkpoint(part / "checkpoints" / "last.safetensors")
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k


def test_resume_without_checkpoint_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="no checkpoint to resume from"):
        fit(tiny(), tmp_path, resume=True, progress=False)


def test_non_finite_loss_stops_with_a_diagnosis(tmp_path) -> None:
    cfg = tiny(
        "train.lr=1e30", "train.normalize=false", "train.max_iter=6", "train.checkpoint_every=1", "model.width=0.125"
    )
    with pytest.raises(
        TrainingDiverged,
        match=r"(at step \d+: with train.normalize=False.*summed loss|non-finite by step \d+).*last good checkpoint",
    ):
        fit(cfg, tmp_path / "run", progress=False)
    # every checkpoint on disk is still readable
    model, _info = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.safetensors")
    assert all(torch.isfinite(t).all() for t in model.state_dict().values() if t.is_floating_point())


def test_staged_32s_to_16s_copies_shared_layers_and_keeps_new_scores_zero(tmp_path) -> None:
    fit(tiny("model.name=fcn32s_resnet18", "model.width=0.125"), tmp_path / "s32", progress=False)
    ckpt = tmp_path / "s32" / "checkpoints" / "last.safetensors"
    m32, _ = load_checkpoint(ckpt)
    import fcnseg

    m16 = fcnseg.get_model("fcn16s_resnet18", num_classes=9, width=0.125)
    report = init_from(m16, ckpt)
    assert "score_fr.weight" in report.copied and "backbone.layer4.1.conv2.weight" in report.copied
    assert "score_pool4.weight" in report.missing and m16.score_pool4.weight.abs().sum() == 0
    assert torch.equal(m16.score_fr.weight, m32.score_fr.weight)
    # the staged config path runs too
    fit(
        tiny("model.name=fcn16s_resnet18", "model.width=0.125", f"model.init_from={ckpt}", "train.max_iter=2"),
        tmp_path / "s16",
        progress=False,
    )


def test_step_sampler_shards_the_global_batch() -> None:
    one = StepSampler(100, 4, 7, 0, 3, DistInfo(0, 1))
    r0 = StepSampler(100, 2, 7, 0, 3, DistInfo(0, 2))
    r1 = StepSampler(100, 2, 7, 0, 3, DistInfo(1, 2))
    for m in range(3):
        assert sorted(one.indices(m)) == sorted(r0.indices(m) + r1.indices(m))


@pytest.mark.slow
def test_multi_task_and_late_fusion_runs(tmp_path) -> None:
    from fcnseg.data import SyntheticShapes  # noqa: F401  (synthetic has one task; check the two-head net trains on SIFT Flow layout)
    from tests.data.fixtures import make_siftflow

    make_siftflow(tmp_path / "sf")
    cfg = tiny(
        "model.name=fcn8s_vgg16",
        "model.heads={sem: 33, geo: 3}",
        "data.name=siftflow",
        f"data.root={tmp_path / 'sf'}",
        "data.train_split=trainval",
        "data.val_split=test",
        "data.options={}",
        "data.val_options={}",
        "data.preprocessing=caffe_siftflow",
        "train.max_iter=2",
        "train.eval_every=2",
        "train.checkpoint_every=2",
    )
    metrics = fit(cfg, tmp_path / "run", progress=False)
    assert set(metrics) == {"sem", "geo"} and 0 <= metrics["geo"]["pixel_accuracy"] <= 1


def test_bf16_autocast_training_on_cpu_stays_finite_and_close_to_fp32(tmp_path) -> None:
    fp32 = fit(
        tiny("train.max_iter=4", "train.eval_every=4", "train.checkpoint_every=4"), tmp_path / "fp32", progress=False
    )
    bf16 = fit(
        tiny("train.max_iter=4", "train.eval_every=4", "train.checkpoint_every=4", "train.amp=true"),
        tmp_path / "bf16",
        progress=False,
    )
    a, b = _losses(tmp_path / "fp32"), _losses(tmp_path / "bf16")
    assert a and set(a) == set(b)  # the comparisons below are not vacuous
    assert all(torch.isfinite(torch.tensor(v)) for v in b.values())
    for s in a:
        assert b[s] == pytest.approx(a[s], rel=0.05)
    assert 0 <= bf16[""]["mean_iu"] <= 1 and 0 <= fp32[""]["mean_iu"] <= 1


def test_torchvision_weights_with_caffe_preprocessing_is_refused(tmp_path) -> None:
    from fcnseg.errors import ConfigError

    cfg = tiny(
        "model.name=fcn8s_resnet18",
        "model.width=1.0",
        "model.backbone_weights=ResNet18_Weights.IMAGENET1K_V1",
        "data.preprocessing=caffe_voc",
    )
    with pytest.raises(ConfigError, match=r"torchvision weights.*data\.preprocessing=imagenet"):
        fit(cfg, tmp_path / "run", progress=False)


def test_backbone_weights_from_a_converted_file(tmp_path) -> None:
    from safetensors.torch import save_file

    import fcnseg

    src = fcnseg.get_model("fcn8s_resnet18", width=0.0625)
    with torch.no_grad():
        src.backbone.layer1[0].conv1.weight.fill_(0.5)
    state = {
        k.removeprefix("backbone."): v.contiguous() for k, v in src.state_dict().items() if k.startswith("backbone.")
    }
    save_file(state, tmp_path / "r18.safetensors")
    run = tmp_path / "run"
    fit(
        tiny(f"model.backbone_weights={tmp_path / 'r18.safetensors'}", "train.max_iter=1", "train.lr=0"),
        run,
        progress=False,
    )
    model, _ = load_checkpoint(run / "checkpoints" / "last.safetensors")
    assert torch.all(model.backbone.layer1[0].conv1.weight == 0.5)
