"""Caffe import without Caffe: both layouts, every tensor in place, same outputs, malformed files refused."""

from __future__ import annotations

import random
import struct
from collections import defaultdict

import numpy as np
import pytest
import torch

import fcnseg
from fcnseg.cli.main import main
from fcnseg.convert import convert_caffe, convert_caffe_backbone, read_caffemodel
from fcnseg.convert.caffe import schema
from fcnseg.errors import CheckpointError
from fcnseg.models import load_backbone_weights

W = 1 / 16


def _layers_of(model) -> dict[str, list[np.ndarray]]:
    """Reference-named layers with random blobs shaped as the model's parameters."""
    g = torch.Generator().manual_seed(0)
    out: dict[str, list[np.ndarray]] = defaultdict(list)
    for key, t in model.state_dict().items():
        layer, _param = key.rsplit(".", 1)
        # deconvolutions keep their bilinear kernels, as in the release; everything else is random
        value = t.clone() if layer.startswith("upscore") else torch.randn(t.shape, generator=g) * 0.05
        out[layer].append(value.numpy())
    return out


def _write_new_layout(path, layers: dict[str, list[np.ndarray]], extra: dict[str, float] | None = None) -> None:
    net = schema()["NetParameter"](name="fcn")
    net.layer.add(name="data", type="Python")  # layers without blobs are skipped
    for name, blobs in layers.items():
        layer = net.layer.add(name=name, type="Convolution")
        for b in blobs:
            blob = layer.blobs.add()
            blob.shape.dim.extend(b.shape)
            blob.data.extend(b.ravel().tolist())
    for name, value in (extra or {}).items():
        blob = net.layer.add(name=name, type="Scale").blobs.add()
        blob.shape.dim.append(4)
        blob.data.extend([value] * 4)
    path.write_bytes(net.SerializeToString())


@pytest.mark.parametrize(
    "net, arch, kwargs",
    [
        ("voc-fcn8s", "fcn8s_vgg16", {"num_classes": 21}),
        ("voc-fcn8s-atonce", "fcn8s_atonce_vgg16", {"num_classes": 21}),
        ("voc-fcn-alexnet", "fcn32s_alexnet", {"num_classes": 21}),
        ("siftflow-fcn16s", "fcn16s_vgg16", {"heads": {"sem": 33, "geo": 3}}),
        ("nyud-fcn32s-color-hha", "fcn32s_vgg16", {"num_classes": 40, "streams": {"color": 3, "hha": 3}}),
        ("nyud-fcn32s-color-d", "fcn32s_vgg16", {"num_classes": 40, "in_channels": 4}),
        ("pascalcontext-fcn32s", "fcn32s_vgg16", {"num_classes": 60}),
    ],
)
def test_reference_layout_every_tensor_in_place_and_same_output(tmp_path, net, arch, kwargs) -> None:
    direct = fcnseg.get_model(arch, width=W, **kwargs).eval()
    layers = _layers_of(direct)
    if "_sem" in " ".join(layers):
        assert "score_fr_sem" in layers and "upscore16_geo" in layers
    if "color" in " ".join(layers):
        assert "conv1_1color" in layers and "score_frhha" in layers
    _write_new_layout(
        tmp_path / "m.caffemodel", layers, {"scale_pool4": 0.01, "scale_pool3": 0.0001} if "atonce" in net else None
    )
    model, info = convert_caffe(tmp_path / "m.caffemodel", net, width=W)
    for key, value in model.state_dict().items():
        layer, param = key.rsplit(".", 1)
        expected = layers[layer][0 if param == "weight" else 1]
        np.testing.assert_array_equal(value.numpy(), expected, err_msg=key)
    direct.load_state_dict(
        {
            k: torch.from_numpy(layers[k.rsplit(".", 1)[0]][0 if k.endswith("weight") else 1])
            for k in direct.state_dict()
        }
    )
    x = torch.randn(1, direct.in_channels, 45, 39) * 30
    with torch.no_grad():
        a, b = direct(x), model.eval()(x)
    for u, v in zip(
        a.values() if isinstance(a, dict) else [a], b.values() if isinstance(b, dict) else [b], strict=True
    ):
        assert torch.equal(u, v)
    assert info.preprocessing["bgr"] is True and info.classes


def test_wire_format_matches_caffe_proto_field_numbers(tmp_path) -> None:
    """Hand-encoded bytes (caffe.proto: NetParameter.layer = 100, LayerParameter.name = 1, blobs = 7,
    BlobProto.shape = 7, data = 5 packed; BlobShape.dim = 1 packed), not written by our own schema."""

    def varint(n: int) -> bytes:
        out = b""
        while True:
            b, n = n & 0x7F, n >> 7
            out += bytes([b | (0x80 if n else 0)])
            if not n:
                return out

    def field(num: int, payload: bytes) -> bytes:
        return varint(num << 3 | 2) + varint(len(payload)) + payload

    shape = field(1, varint(2) + varint(3))  # dim: packed [2, 3]
    data = field(5, struct.pack("<6f", *range(6)))
    blob = field(7, shape) + data
    layer = field(1, b"conv1_1") + field(2, b"Convolution") + field(7, blob)
    (tmp_path / "h.caffemodel").write_bytes(field(100, layer))
    (read,) = read_caffemodel(tmp_path / "h.caffemodel")
    assert read.name == "conv1_1"
    np.testing.assert_array_equal(read.blobs[0], np.arange(6, dtype=np.float32).reshape(2, 3))


def test_legacy_v1_ilsvrc_vgg16_into_a_trunk(tmp_path) -> None:
    """V1 `layers` with num/channels/height/width blobs; fc6 stored 1×1×4096×25088 (here scaled down)."""
    target = fcnseg.get_model("fcn32s_vgg16", width=W)
    net = schema()["NetParameter"](name="VGG_ILSVRC_16_layers")
    g = torch.Generator().manual_seed(1)
    expected = {}
    trunk = {k: v for k, v in target.state_dict().items() if not k.startswith(("score", "upscore"))}
    for key, like in [*list(trunk.items()), ("fc8.weight", torch.zeros(1000, 256)), ("fc8.bias", torch.zeros(1000))]:
        layer_name, param = key.rsplit(".", 1)
        if param == "weight":
            layer = net.layers.add(name=layer_name, type=4 if layer_name.startswith("conv") else 14)
        value = torch.randn(like.shape, generator=g)
        expected[key] = value
        blob = layer.blobs.add()
        if param == "bias":
            dims = (1, 1, 1, like.numel())
        elif layer_name.startswith("fc"):
            dims = (1, 1, like.shape[0], like[0].numel())
        else:
            dims = tuple(like.shape)
        blob.num, blob.channels, blob.height, blob.width = dims
        blob.data.extend(value.ravel().tolist())
    (tmp_path / "vgg.caffemodel").write_bytes(net.SerializeToString())
    state = convert_caffe_backbone(tmp_path / "vgg.caffemodel")
    assert "fc8.weight" not in state and state["fc6.weight"].shape == (256, 32 * 49)
    report = load_backbone_weights(target, state)
    assert set(report.coerced) == {"fc6.weight", "fc7.weight"} and report.missing == []
    for key in trunk:
        torch.testing.assert_close(target.state_dict()[key], expected[key], rtol=0, atol=0)
    assert (
        main(
            [
                "convert",
                "caffe",
                str(tmp_path / "vgg.caffemodel"),
                "--net",
                "vgg16-ilsvrc",
                "--out",
                str(tmp_path / "vgg.safetensors"),
            ]
        )
        == 0
    )


def test_cli_convert_caffe_then_predict(tmp_path, capsys) -> None:
    layers = _layers_of(fcnseg.get_model("fcn32s_vgg16", width=W))
    _write_new_layout(tmp_path / "m.caffemodel", layers)
    out = tmp_path / "w.safetensors"
    assert (
        main(
            [
                "convert",
                "caffe",
                str(tmp_path / "m.caffemodel"),
                "--net",
                "voc-fcn32s",
                "--out",
                str(out),
                "--width",
                str(W),
            ]
        )
        == 0
    )
    from PIL import Image

    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "a.png")
    assert main(["predict", "--checkpoint", str(out), str(tmp_path / "a.png"), "--out", str(tmp_path / "p")]) == 0


def test_blob_shape_must_match_its_data(tmp_path) -> None:
    net = schema()["NetParameter"]()
    blob = net.layer.add(name="conv1_1").blobs.add()
    blob.shape.dim.extend([2, 3])
    blob.data.extend([1.0] * 5)
    (tmp_path / "a.caffemodel").write_bytes(net.SerializeToString())
    with pytest.raises(CheckpointError, match=r"blob shape \(2, 3\) needs 6 values, the file has 5"):
        read_caffemodel(tmp_path / "a.caffemodel")
    blob.shape.ClearField("dim")
    blob.shape.dim.extend([100000, 100000])
    (tmp_path / "b.caffemodel").write_bytes(net.SerializeToString())
    with pytest.raises(CheckpointError, match="claims more data than the file holds"):
        read_caffemodel(tmp_path / "b.caffemodel")


def test_fuzz_random_and_truncated_bytes_are_refused_cleanly(tmp_path) -> None:
    layers = _layers_of(fcnseg.get_model("fcn32s_vgg16", width=W))
    _write_new_layout(tmp_path / "good.caffemodel", layers)
    good = (tmp_path / "good.caffemodel").read_bytes()
    rng = random.Random(0)
    cases = [bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 2000))) for _ in range(60)]
    cases += [good[: rng.randint(1, len(good) - 1)] for _ in range(40)]
    cases += [bytearray(good) for _ in range(20)]
    for c in cases[-20:]:
        for _ in range(5):
            c[rng.randrange(len(c))] = rng.getrandbits(8)
    for i, content in enumerate(cases):
        path = tmp_path / f"f{i}.caffemodel"
        path.write_bytes(bytes(content))
        try:
            convert_caffe(path, "voc-fcn32s", width=W)
        except CheckpointError as e:
            assert str(path) in str(e)
        # anything else (a traceback) fails the test


def test_unknown_net_is_listed(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="unknown reference net 'voc-fcn4s'; known: voc-fcn32s"):
        convert_caffe(tmp_path / "x", "voc-fcn4s")
