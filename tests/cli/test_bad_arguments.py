"""Bad command lines, files and disks: one line naming the file or value, exit 2, never a traceback or a partial output."""

from __future__ import annotations

import pytest
from PIL import Image

import fcnseg
from fcnseg.cli.main import main
from tests.badinput import no_traceback, png


@pytest.mark.parametrize(
    "argv, message",
    [
        (["predict", "--checkpoint", "{ck}", "{tmp}/empty", "--out", "{tmp}/o"], "no images found"),
        (
            ["predict", "--checkpoint", "{tmp}/missing.safetensors", "{tmp}/empty", "--out", "{tmp}/o"],
            "checkpoint not found",
        ),
        (
            ["predict", "--checkpoint", "{tmp}/garbage.safetensors", "{tmp}/empty", "--out", "{tmp}/o"],
            "not a safetensors checkpoint",
        ),
        (["eval", "--model", "fcn8s_vgg16", "--weights", "{ck}", "--num-classes", "21"], "does not fit fcn8s_vgg16"),
        (
            ["export", "--model", "fcn32s_vgg16", "--weights", "{ck}", "--out", "{tmp}/m.onnx"],
            "does not fit fcn32s_vgg16",
        ),
        (["data", "check", "{tmp}/nowhere", "--dataset", "voc"], "VOCdevkit folder not found"),
        (["data", "check", "{tmp}/emptyfolder", "--dataset", "folder"], "no images"),
        (["train", "{tmp}/unknown.yaml"], "train.lrr: unknown key"),
        (["train", "{tmp}/wrongtype.yaml"], "train.max_iter: expected int"),
        (["train", "{tmp}/noroot.yaml", "--out", "{tmp}/run"], "VOCdevkit folder not found"),
        (["train", "{tmp}/none.yaml"], "config file not found"),
        (
            ["convert", "caffe", "{tmp}/garbage.safetensors", "--net", "voc-fcn8s", "--out", "{tmp}/w.safetensors"],
            "garbage.safetensors",
        ),
        (["convert", "torchfcn", "{tmp}/garbage.safetensors", "--out", "{tmp}/w.safetensors"], "cannot load safely"),
        (["info", "fcn9s_vgg16"], "Unknown model"),
    ],
)
def test_bad_arguments_configs_and_files(tmp_path, checkpoint, capsys, argv: list[str], message: str) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "emptyfolder" / "images").mkdir(parents=True)
    (tmp_path / "emptyfolder" / "masks").mkdir(parents=True)
    (tmp_path / "garbage.safetensors").write_bytes(b"\x00\x01garbage" * 10)
    (tmp_path / "unknown.yaml").write_text("train:\n  lrr: 1\n")
    (tmp_path / "wrongtype.yaml").write_text("train:\n  max_iter: lots\n")
    (tmp_path / "noroot.yaml").write_text(f"data:\n  name: voc\n  root: {tmp_path / 'no-such-root'}\n")
    args = [a.replace("{tmp}", str(tmp_path)).replace("{ck}", str(checkpoint)) for a in argv]
    code = main(args)
    err = capsys.readouterr().err
    no_traceback(err, code)
    assert code == 2 and message in err, err
    for partial in ("o", "run", "m.onnx", "w.safetensors"):
        assert not (tmp_path / partial).exists() or partial == "run"


@pytest.mark.parametrize(
    "flag, value, message",
    [
        ("--alpha", "2", "argument --alpha: '2': expected a value >= 0 and <= 1"),
        ("--scales", "0", "argument --scales: '0': expected a value > 0"),
        ("--scales", "abc", "argument --scales: 'abc' is not a number"),
        ("--tile", "-5", "argument --tile: '-5'"),
    ],
)
def test_bad_numbers_on_the_command_line_are_one_line(tmp_path, checkpoint, capsys, flag, value, message) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "--checkpoint", str(checkpoint), str(tmp_path), flag, value])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("argv", [["--port", "70000"], ["--port", "http"], ["--max-upload-mb", "-1"]])
def test_bad_serve_arguments_are_one_line(capsys, argv) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", *argv])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_os_errors_are_one_line(tmp_path, checkpoint, capsys, monkeypatch) -> None:
    import errno

    image = tmp_path / "x.png"
    image.write_bytes(png(Image.new("RGB", (9, 7))))
    (tmp_path / "afile").write_text("in the way")
    code = main(["predict", "--checkpoint", str(checkpoint), str(image), "--out", str(tmp_path / "afile" / "o")])
    err = capsys.readouterr().err
    no_traceback(err, code)
    assert code == 2 and "afile" in err and ("a file is in the way" in err or "Not a directory" in err), err

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "o" / "x.png"))

    monkeypatch.setattr("fcnseg.io.os.fsync", full)
    code = main(["predict", "--checkpoint", str(checkpoint), str(image), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    no_traceback(err, code)
    assert code == 2 and "No space left on device (the disk is full)" in err, err
    assert not [p for p in (tmp_path / "o").rglob("*") if p.suffix in (".png", ".jpg", ".tmp")]


def test_dataloader_worker_errors_are_reported_as_the_workers_own_line() -> None:
    from torch._utils import ExceptionWrapper

    from fcnseg.cli.main import one_line

    try:
        raise fcnseg.errors.DataError("data/x.jpg: corrupt or truncated image (broken data stream)")
    except fcnseg.errors.DataError:
        wrapped = ExceptionWrapper(where="in DataLoader worker process 0")
    with pytest.raises(fcnseg.errors.DataError) as info:
        wrapped.reraise()
    assert "Traceback" in str(info.value)  # what PyTorch hands back
    assert one_line(info.value) == "data/x.jpg: corrupt or truncated image (broken data stream)"
