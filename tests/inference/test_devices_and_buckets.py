"""--device on every command; predict --batch-size; size buckets and scoped settings of the fast path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import fcnseg
from fcnseg.cli.main import full_parser, main
from fcnseg.inference import Segmenter
from fcnseg.inference.fast import FastModel, bucket_size, optimize_for_inference
from fcnseg.preprocessing import IMAGENET
from fcnseg.runtime.checkpoint import CheckpointInfo, model_kwargs, save_checkpoint

COMMANDS = {
    "train": ["train", "c.yaml"],
    "eval": ["eval", "--checkpoint", "x"],
    "predict": ["predict", "--checkpoint", "x", "in"],
    "export": ["export", "--checkpoint", "x", "--out", "y"],
    "serve": ["serve"],
    "bench": ["bench"],
    "demo": ["demo"],
    "experiment": ["experiment", "miniature"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_takes_a_device(command) -> None:
    args = full_parser().parse_args([*COMMANDS[command], "--device", "cuda:1"])
    assert args.device == "cuda:1"


def _model() -> torch.nn.Module:
    model = fcnseg.get_model("fcn8s_resnet18", num_classes=4, width=1 / 16)
    with torch.no_grad():
        for n in model.score_layer_names():
            getattr(model, n).weight.normal_()
    return model.eval()


@pytest.fixture
def checkpoint(tmp_path):
    model = _model()
    info = CheckpointInfo(
        arch=model.arch, model_kwargs=model_kwargs(model), classes=list("abcd"), preprocessing=IMAGENET.to_dict()
    )
    return save_checkpoint(tmp_path / "ckpt", model, info)


def test_a_cuda_device_where_there_is_none_is_one_line_and_exit_2(checkpoint, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    (tmp_path / "in").mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "in" / "a.png")
    for argv in (
        ["eval", "--checkpoint", str(checkpoint), "--dataset", "synthetic", "--split", "val"],
        ["predict", "--checkpoint", str(checkpoint), str(tmp_path / "in"), "--out", str(tmp_path / "o")],
        ["export", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "m.onnx")],
    ):
        assert main([*argv, "--device", "cuda"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "no CUDA device is available here" in err[0], argv
    assert not (tmp_path / "o").exists() and not (tmp_path / "m.onnx").exists()


def test_eval_on_the_cpu_device_with_batches(checkpoint, tmp_path, capsys) -> None:
    argv = ["eval", "--checkpoint", str(checkpoint), "--dataset", "synthetic", "--split", "val", "--max-images", "5"]
    assert main([*argv, "--device", "cpu", "--batch-size", "1"]) == 0
    one = capsys.readouterr().out
    assert main([*argv, "--device", "cpu", "--batch-size", "4"]) == 0
    assert capsys.readouterr().out == one and "mean IU" in one


def test_predict_batch_size_writes_the_same_masks_as_one_at_a_time(checkpoint, tmp_path) -> None:
    rng = np.random.default_rng(0)
    folder = tmp_path / "in"
    folder.mkdir()
    for i, (h, w) in enumerate([(40, 48)] * 3 + [(33, 52)] * 2 + [(40, 48)]):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / f"img{i}.png")
    (folder / "broken.png").write_text("not an image")
    outs = {}
    for batch in (1, 4):
        out = tmp_path / f"out{batch}"
        assert (
            main(
                [
                    "predict",
                    "--checkpoint",
                    str(checkpoint),
                    str(folder),
                    "--out",
                    str(out),
                    "--device",
                    "cpu",
                    "--batch-size",
                    str(batch),
                ]
            )
            == 1
        )  # fmt: skip  (1: the broken input failed, the rest written)
        outs[batch] = {p.name: p.read_bytes() for p in sorted(out.glob("img*.png"))}
    assert len(outs[1]) == 6 and outs[4] == outs[1]


def test_batch_size_with_tiles_or_tta_is_refused(checkpoint, tmp_path, capsys) -> None:
    assert main(["predict", "--checkpoint", str(checkpoint), str(tmp_path), "--batch-size", "4", "--flip"]) == 2
    assert "--batch-size 4: batches plain scoring only" in capsys.readouterr().err


def test_segmenter_predict_many_equals_predict() -> None:
    seg = Segmenter(_model(), preprocessing=IMAGENET)
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, s, dtype=np.uint8) for s in [(30, 30, 3), (30, 30, 3), (25, 41, 3)]]
    for one, many in zip([seg.predict(i) for i in images], seg.predict_many(images), strict=True):
        assert np.array_equal(one, many)


def test_bucketed_inputs_are_padded_scored_and_cropped_back() -> None:
    assert bucket_size(500, 375, (256, 384, 512)) == (512, 384)
    assert bucket_size(600, 100, (256, 512)) is None
    model = _model()
    fast = optimize_for_inference(model, buckets=(48, 64))
    for h, w in [(40, 50), (48, 64), (64, 30)]:
        x = torch.randn(1, 3, h, w)
        bh, bw = bucket_size(h, w, (48, 64))
        with torch.inference_mode():
            ref = model(F.pad(x, (0, bw - w, 0, bh - h)).contiguous(memory_format=torch.channels_last))[..., :h, :w]
        out = fast(x)
        assert out.shape == (1, 4, h, w)
        torch.testing.assert_close(out, ref)
    with torch.inference_mode():  # larger than every bucket: the eager model at its own size
        x = torch.randn(1, 3, 70, 20)
        torch.testing.assert_close(fast(x), model(x.contiguous(memory_format=torch.channels_last)))


def test_benchmark_mode_is_set_around_a_call_and_never_left_behind() -> None:
    seen = []

    def runner(x):
        seen.append(torch.backends.cudnn.benchmark)
        return torch.zeros(x.shape[0], 2, *x.shape[-2:])

    before = torch.backends.cudnn.benchmark
    fast = FastModel(
        torch.nn.Identity(),
        runner,
        device=torch.device("cpu"),
        dtype=None,
        channels_last=False,
        buckets=(32,),
        benchmark=True,
    )
    assert fast(torch.zeros(1, 3, 20, 20)).shape == (1, 2, 20, 20)
    assert seen == [True] and torch.backends.cudnn.benchmark == before


def test_the_decision_line_says_which_engines_were_left_out_and_why() -> None:
    from fcnseg.inference.decision import Decision

    d = Decision("torch", 512, [375, 500], {"torch": 1.07}, reason="99 image(s) would save 38.6 s")
    d.skipped["torch-bf16"] = "label agreement with fp32 0.9933 < 0.995"
    line = d.summary()
    assert line.startswith("engine auto: torch for ~512px images (99 image(s) would save 38.6 s)")
    assert line.endswith("; torch-bf16 left out: label agreement with fp32 0.9933 < 0.995")
