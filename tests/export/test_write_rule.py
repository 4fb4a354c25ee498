"""Issue 30 through ``fcnseg export`` and ``fcnseg convert``: never over the file converted from, nor over a user's
file without ``--overwrite``. Each case failed before its fix (the checkpoint became ONNX bytes)."""

from __future__ import annotations

import fcnseg
from fcnseg.cli.main import main
from fcnseg.runtime.checkpoint import CheckpointInfo, model_kwargs, save_checkpoint
from tests.badinput import no_traceback
from tests.convert.test_caffe import W, _layers_of, _write_new_layout


def _refused(capsys, code: int, message: str) -> None:
    err = capsys.readouterr().err
    no_traceback(err, code)
    assert code == 2 and message in err, err


def _checkpoint(tmp_path):
    model = fcnseg.get_model("fcn32s_vgg16", num_classes=3, width=1 / 16)
    return save_checkpoint(tmp_path / "ck", model, CheckpointInfo(arch=model.arch, model_kwargs=model_kwargs(model)))


def test_export_never_writes_over_its_checkpoint(tmp_path, capsys) -> None:
    ckpt = _checkpoint(tmp_path)
    before = ckpt.read_bytes()
    for flags in ([], ["--overwrite"]):  # not even when told to overwrite
        _refused(capsys, main(["export", "--checkpoint", str(ckpt), "--out", str(ckpt), *flags]), "is the input")
    assert ckpt.read_bytes() == before
    (tmp_path / "link.onnx").symlink_to(ckpt)
    _refused(capsys, main(["export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "link.onnx")]), "exists")
    assert ckpt.read_bytes() == before and (tmp_path / "link.onnx").is_symlink()


def test_export_over_an_existing_file_needs_overwrite(tmp_path, capsys) -> None:
    ckpt = _checkpoint(tmp_path)
    (tmp_path / "model.onnx").write_bytes(b"the user's own model")
    argv = ["export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "model.onnx")]
    _refused(capsys, main(argv), "already exists; add --overwrite")
    assert (tmp_path / "model.onnx").read_bytes() == b"the user's own model"
    assert main([*argv, "--overwrite"]) == 0 and (tmp_path / "model.onnx").read_bytes() != b"the user's own model"


def test_convert_caffe_never_writes_over_its_caffemodel(tmp_path, capsys) -> None:
    model = tmp_path / "voc.safetensors"  # a caffemodel under the name the output would take
    _write_new_layout(model, _layers_of(fcnseg.get_model("fcn32s_vgg16", width=W)))
    before = model.read_bytes()
    argv = ["convert", "caffe", str(model), "--net", "voc-fcn32s", "--width", str(W), "--out", str(model)]
    for flags in ([], ["--overwrite"]):  # not even when told to overwrite
        _refused(capsys, main([*argv, *flags]), "is the input")
    assert model.read_bytes() == before
    theirs = _checkpoint(tmp_path)  # a trained checkpoint of the user's
    kept = theirs.read_bytes()
    argv[-1] = str(theirs)
    _refused(capsys, main(argv), "already exists; add --overwrite")
    assert theirs.read_bytes() == kept
