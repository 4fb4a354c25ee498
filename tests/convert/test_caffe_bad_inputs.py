"""Caffe models that convert without complaint but hold nonsense: NaN or infinite weights, two layers of one name."""

from __future__ import annotations

import numpy as np
import pytest

import fcnseg
from fcnseg.cli.main import main
from fcnseg.convert import convert_caffe, read_caffemodel
from fcnseg.convert.caffe import schema
from fcnseg.errors import CheckpointError
from tests.badinput import no_traceback

from .test_caffe import W, _layers_of, _write_new_layout


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_weights_are_refused(tmp_path, capsys, value: float) -> None:
    layers = _layers_of(fcnseg.get_model("fcn32s_vgg16", width=W, num_classes=21))
    layers["conv3_1"][0].flat[7] = value
    _write_new_layout(tmp_path / "m.caffemodel", layers)
    with pytest.raises(CheckpointError, match=r"m.caffemodel: layer 'conv3_1' blob 0: holds NaN or infinite values"):
        convert_caffe(tmp_path / "m.caffemodel", "voc-fcn32s", width=W)
    code = main(
        ["convert", "caffe", str(tmp_path / "m.caffemodel"), "--net", "voc-fcn32s", "--out", str(tmp_path / "o")]
    )
    err = capsys.readouterr().err
    no_traceback(err, code)
    assert code == 2 and "holds NaN or infinite values" in err, err


def test_two_layers_of_one_name_are_refused(tmp_path) -> None:
    layers = _layers_of(fcnseg.get_model("fcn32s_vgg16", width=W, num_classes=21))
    _write_new_layout(tmp_path / "m.caffemodel", layers)
    net = schema()["NetParameter"]()
    net.ParseFromString((tmp_path / "m.caffemodel").read_bytes())
    copy = net.layer.add()
    copy.CopyFrom(next(layer for layer in net.layer if layer.name == "score_fr"))
    copy.blobs[0].data[:] = [0.0] * len(copy.blobs[0].data)  # a second score_fr: which one wins was file order
    (tmp_path / "dup.caffemodel").write_bytes(net.SerializeToString())
    with pytest.raises(CheckpointError, match=r"dup.caffemodel: two layers with weights are named 'score_fr'"):
        read_caffemodel(tmp_path / "dup.caffemodel")


def test_the_same_name_in_both_layouts_is_refused(tmp_path) -> None:
    net = schema()["NetParameter"]()
    for container in (net.layer, net.layers):
        blob = container.add(name="conv1_1").blobs.add()
        blob.shape.dim.extend([2])
        blob.data.extend(np.ones(2, np.float32).tolist())
    (tmp_path / "both.caffemodel").write_bytes(net.SerializeToString())
    with pytest.raises(CheckpointError, match="two layers with weights are named 'conv1_1'"):
        read_caffemodel(tmp_path / "both.caffemodel")
