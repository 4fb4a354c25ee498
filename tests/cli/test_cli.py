"""The command line, end to end through ``fcnseg.cli.main.main``: results, one-line errors, exit codes."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from fcnseg.cli.main import main


def _train(tmp_path, capsys) -> str:
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(
        "model: {name: fcn8s_resnet18, width: 0.0625}\n"
        "data: {options: {n: 16, size: 32}, val_options: {n: 3}, preprocessing: imagenet, batch_size: 2}\n"
        "train: {lr: 0.01, momentum: 0.9, normalize: true, max_iter: 2, log_every: 1, eval_every: 2, checkpoint_every: 2}\n"
    )
    assert main(["train", str(cfg), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    assert "mean IU" in capsys.readouterr().out
    return str(tmp_path / "run" / "checkpoints" / "best.safetensors")


def test_list_and_info(capsys) -> None:
    assert main(["list", "fcn8s_*vgg16"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["fcn8s_atonce_vgg16", "fcn8s_vgg16"]
    assert "reference-exact" in lines[1] and "All-at-once" in lines[0]  # each net says what it is
    assert main(["info", "fcn8s_vgg16"]) == 0
    out = capsys.readouterr().out
    assert "134.36M" in out and "'score_pool4': 5, 'score_pool3': 9, 'score': 31" in out


def test_unknown_model_is_one_line_and_exit_2(capsys) -> None:
    assert main(["info", "fcn8_vgg16"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Unknown model 'fcn8_vgg16'" in err[0] and "Traceback" not in err[0]


def test_bad_config_is_one_line_and_exit_2(tmp_path, capsys) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("train:\n  lrr: 1\n")
    assert main(["train", str(cfg), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "train.lrr: unknown key" in err[0] and "bad.yaml" in err[0]
    assert not (tmp_path / "run").exists()  # nothing half-written


def test_data_synth_then_check(tmp_path, capsys) -> None:
    assert main(["data", "synth", "--out", str(tmp_path / "d"), "--num-images", "6", "--size", "32"]) == 0
    assert main(["data", "check", str(tmp_path / "d"), "--dataset", "voc"]) == 0
    out = capsys.readouterr().out
    assert "5/5 samples readable, 0 problem(s)" in out and "background" in out
    (tmp_path / "d" / "VOCdevkit" / "VOC2012" / "JPEGImages" / "synth_train_000000.jpg").write_text("not an image")
    assert main(["data", "check", str(tmp_path / "d"), "--dataset", "voc"]) == 1
    assert "synth_train_000000.jpg: not an image" in capsys.readouterr().out


def test_missing_dataset_root_exit_2(tmp_path, capsys) -> None:
    assert main(["data", "check", str(tmp_path / "none"), "--dataset", "sbd"]) == 2
    assert "SBD dataset folder not found" in capsys.readouterr().err


def test_train_eval_predict_on_the_real_demo_image(tmp_path, capsys, reference_dir) -> None:
    ckpt = _train(tmp_path, capsys)
    assert main(["eval", "--checkpoint", ckpt, "--out", str(tmp_path / "ev")]) == 0
    out = capsys.readouterr().out
    assert "mean IU" in out and "background" in out
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert {"pixel_accuracy", "mean_accuracy", "mean_iu", "fw_iu"} <= set(metrics)
    assert (tmp_path / "ev" / "confusion.png").is_file() and (tmp_path / "ev" / "grid.png").is_file()
    images = tmp_path / "in"
    images.mkdir()
    shutil.copy(reference_dir / "demo" / "image.jpg", images / "demo.jpg")
    (images / "broken.jpg").write_bytes(b"\xff\xd8\xff truncated")
    code = main(["predict", "--checkpoint", ckpt, str(images), "--out", str(tmp_path / "pred"), "--probs"])
    captured = capsys.readouterr()
    assert code == 1 and "broken.jpg" in captured.err and "1 input(s) failed" in captured.out
    mask = Image.open(tmp_path / "pred" / "demo.png")
    assert mask.mode == "P" and mask.size == (334, 500)
    from fcnseg.runtime.checkpoint import read_info
    from fcnseg.viz import palette_for

    classes = read_info(ckpt).classes  # the model's own class colours, as in its grids and the serve page
    assert mask.getpalette()[3:6] == palette_for(classes)[1].tolist()
    assert Image.open(tmp_path / "pred" / "demo_overlay.jpg").size == (334, 500)
    probs = np.load(tmp_path / "pred" / "demo_probs.npy")
    assert probs.shape == (9, 500, 334) and np.allclose(probs.astype(np.float32).sum(0), 1, atol=1e-2)
    assert not (tmp_path / "pred" / "broken.png").exists()
    bookkeeping = (".lock", ".fcnseg-written.jsonl")  # the folder's lock and ledger
    assert not [p for p in (tmp_path / "pred").iterdir() if p.name.startswith(".") and p.name not in bookkeeping]


def test_eval_of_a_missing_checkpoint(tmp_path, capsys) -> None:
    assert main(["eval", "--checkpoint", str(tmp_path / "x.safetensors")]) == 2
    assert "x.safetensors: checkpoint not found" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_smoke(tmp_path, capsys) -> None:
    assert main(["demo", "--out", str(tmp_path / "demo"), "--steps", "4", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "mean IU" in out and "next:" in out
    for name in (
        "metrics.json",
        "curves.png",
        "grid.png",
        "confusion.png",
        "report.md",
        "checkpoints/best.safetensors",
    ):
        assert (tmp_path / "demo" / name).is_file(), name
    assert len(list((tmp_path / "demo" / "predictions").glob("example_*_overlay.jpg"))) == 4


def test_info_names_a_dilated_checkpoints_output_stride(tmp_path, capsys) -> None:
    import fcnseg
    from fcnseg.runtime.checkpoint import CheckpointInfo, model_kwargs, save_checkpoint

    model = fcnseg.get_model("fcn32s_vgg16", num_classes=3, width=1 / 16, pad100=False, output_stride=16)
    path = save_checkpoint(
        tmp_path / "dil",
        model,
        CheckpointInfo(arch=model.arch, model_kwargs=model_kwargs(model), classes=["a", "b", "c"]),
    )
    assert main(["info", str(path)]) == 0
    assert "output stride 16 (dilated: shift-and-stitch)" in capsys.readouterr().out
    assert main(["info", "fcn32s_vgg16"]) == 0
    assert "output stride" not in capsys.readouterr().out
