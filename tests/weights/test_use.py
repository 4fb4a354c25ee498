"""Registry weights used everywhere a model is named: ``fcnseg.get_model``, ``Segmenter``, every release entry,
torchfcn's copies, and the trunks of training configs (``model.backbone_weights`` / ``model.init_from``)."""

from __future__ import annotations

import hashlib
import socket
from dataclasses import replace

import numpy as np
import pytest
import torch

import fcnseg
from fcnseg.convert import convert_caffe
from fcnseg.errors import ConfigError, ModelError, WeightsError
from fcnseg.preprocessing import Preprocessing
from fcnseg.runtime.checkpoint import load_checkpoint
from fcnseg.weights import get_weights, register_weights
from fcnseg.weights.entries import REFERENCE
from fcnseg.weights.records import WeightFile
from tests.helpers import tiny
from tests.weights.files import W, write_caffemodel, write_vgg16_ilsvrc

FILE = "fcn8s-heavy-pascal.caffemodel"


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_get_model_with_weights_in_one_call(mirror, scaled_registry) -> None:
    write_caffemodel(mirror.root / FILE, "voc-fcn8s")
    direct, _ = convert_caffe(mirror.root / FILE, "voc-fcn8s", width=W)
    model = fcnseg.get_model("fcn8s_vgg16", weights="voc")
    assert _same(model, direct) and model.pretrained.classes[15] == "person"
    assert model.pretrained.preprocessing["bgr"] is True
    assert _same(fcnseg.get_model("fcn8s_vgg16.voc"), direct)  # the full name alone
    assert _same(fcnseg.get_model("fcn8s_vgg16", weights=get_weights("fcn8s_vgg16.voc")), direct)
    lean = fcnseg.get_model("fcn8s_vgg16", weights="voc", pad100=False)  # same weights, another canvas
    assert lean.pad100 is False and _same(lean, direct)
    with pytest.raises(ModelError, match=r"num_classes=5 does not fit voc \(built with num_classes=21\)"):
        fcnseg.get_model("fcn8s_vgg16", weights="voc", num_classes=5)
    with pytest.raises(ModelError, match="are for fcn8s_vgg16, not fcn32s_vgg16"):
        fcnseg.get_model("fcn32s_vgg16", weights="fcn8s_vgg16.voc")
    with pytest.raises(ModelError, match="Unknown model 'fcn4s_vgg16'"):
        fcnseg.get_model("fcn4s_vgg16", weights="voc")
    plain = fcnseg.get_model("fcn8s_vgg16", num_classes=3, width=W)  # without weights: the builder as before
    assert plain.num_classes == 3 and not hasattr(plain, "pretrained")
    assert mirror.counts[FILE] == 1


def test_segmenter_by_name_predicts_as_the_converted_checkpoint(tmp_path, mirror, scaled_registry) -> None:
    from fcnseg.runtime.checkpoint import save_checkpoint

    write_caffemodel(mirror.root / FILE, "voc-fcn8s")
    model, info = convert_caffe(mirror.root / FILE, "voc-fcn8s", width=W)
    direct = fcnseg.Segmenter(save_checkpoint(tmp_path / "d", model, info), device="cpu", engine="torch")
    image = np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    for seg in (
        fcnseg.Segmenter("fcn8s_vgg16.voc", device="cpu", engine="torch"),
        fcnseg.Segmenter("fcn8s_vgg16", weights="voc", device="cpu", engine="torch"),
    ):
        assert seg.classes == direct.classes and seg.preprocessing == direct.preprocessing
        np.testing.assert_array_equal(seg.predict(image), direct.predict(image))


@pytest.mark.parametrize("entry", REFERENCE, ids=lambda w: w.name)
def test_every_release_entry_fetches_and_converts(entry, mirror, scaled_registry) -> None:
    write_caffemodel(mirror.root / entry.file.name, entry.net)
    direct, info = convert_caffe(mirror.root / entry.file.name, entry.net, width=W)
    model = fcnseg.get_model(entry.name)
    assert model.arch == entry.model and _same(model, direct)
    assert model.pretrained.classes == info.classes
    assert Preprocessing.from_dict(model.pretrained.preprocessing) == entry.preprocess
    assert model.pretrained.config["weights"]["metrics"] == dict(entry.metrics)


def test_torchfcn_copies(mirror, scaled_registry) -> None:
    entry = get_weights("fcn8s_atonce_vgg16.voc-torchfcn")
    source = fcnseg.models.get_model("fcn8s_atonce_vgg16", width=W)
    state = {f"module.{k}": torch.randn(v.shape) for k, v in source.state_dict().items()}  # DataParallel-saved
    torch.save({"model_state_dict": state, "optim_state_dict": {}}, mirror.root / entry.file.name)
    model = fcnseg.get_model("fcn8s_atonce_vgg16", weights="voc-torchfcn")
    assert all(torch.equal(model.state_dict()[k.removeprefix("module.")], v) for k, v in state.items())
    assert model.pretrained.preprocessing["bgr"] and len(model.pretrained.classes) == 21
    assert mirror.counts[entry.file.name] == 1  # mirrored: plain HTTP, no Google Drive client involved


def test_caffe_vgg16_trunk_as_backbone_weights_and_init_from(mirror, scaled_registry) -> None:
    from fcnseg.train.build import init_backbone, init_from

    expected = write_vgg16_ilsvrc(mirror.root / "VGG_ILSVRC_16_layers.caffemodel")
    model = fcnseg.get_model("fcn32s_vgg16", width=W, backbone_weights="imagenet-caffe")
    for key, value in expected.items():
        assert torch.equal(model.state_dict()[key], value.reshape(model.state_dict()[key].shape)), key
    cfg = tiny("model.name=fcn32s_vgg16", "model.backbone_weights=vgg16.imagenet-caffe", "data.preprocessing=caffe_voc")
    target = fcnseg.models.get_model("fcn32s_vgg16", width=W)
    report = init_backbone(target, cfg)
    assert report.missing == [] and set(report.coerced) == {"fc6.weight", "fc7.weight"} and _same(target, model)
    target = fcnseg.models.get_model("fcn32s_vgg16", width=W)
    init_from(target, "imagenet-caffe", "caffe_voc")  # a trunk as model.init_from: transplanted the same way
    assert _same(target, model)
    assert mirror.counts["VGG_ILSVRC_16_layers.caffemodel"] == 1
    with pytest.raises(ConfigError, match=r"expect caffe_voc input .*data.preprocessing is 'imagenet'"):
        init_backbone(fcnseg.models.get_model("fcn32s_vgg16", width=W), tiny("model.backbone_weights=imagenet-caffe"))
    with pytest.raises(ConfigError, match=r"fcn32s_vgg16.voc are a whole FCN's weights.*model.init_from"):
        init_backbone(target, tiny("model.backbone_weights=fcn32s_vgg16.voc", "data.preprocessing=caffe_voc"))
    with pytest.raises(ConfigError, match="does not fit fcnseg's GoogLeNet trunk"):
        fcnseg.get_model("fcn32s_googlenet", backbone_weights="googlenet.imagenet-caffe")


def test_init_from_a_coarser_net_s_pretrained_weights(mirror, scaled_registry) -> None:
    from fcnseg.train.build import init_from

    write_caffemodel(mirror.root / "fcn32s-heavy-pascal.caffemodel", "voc-fcn32s")
    coarse = fcnseg.get_model("fcn32s_vgg16.voc")
    fine = fcnseg.models.get_model("fcn16s_vgg16", width=W)
    report = init_from(fine, "fcn32s_vgg16.voc")
    assert "score_fr.weight" in report.copied and "score_pool4.weight" in report.missing
    assert torch.equal(fine.state_dict()["fc7.weight"], coarse.state_dict()["fc7.weight"])


def test_torchvision_trunk_from_the_cache_as_torchvision_s_own(tmp_path, mirror, monkeypatch) -> None:
    """torchvision entries download through fcnseg (mirror, checksum prefix, cache) yet load as torchvision's enum
    would: GoogLeNet's input transform is switched on."""
    import torchvision

    entry = get_weights("googlenet.imagenet")
    name = entry.source_file().name
    classifier = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True)
    torch.save(classifier.state_dict(), mirror.root / name)
    with pytest.raises(WeightsError, match=rf"{name} from .*: SHA-256 \w+… does not start with the published 1378be20"):
        fcnseg.get_model("fcn32s_googlenet", backbone_weights="imagenet")  # not torchvision's file: refused
    digest = hashlib.sha256((mirror.root / name).read_bytes()).hexdigest()
    own = replace(entry, file=WeightFile(name, entry.source_file().url, f"sha256:{digest}"))  # a lab's own copy
    register_weights(own, replace=True)
    try:
        model = fcnseg.get_model("fcn32s_googlenet", backbone_weights="imagenet")
    finally:
        register_weights(entry, replace=True)
    assert torch.equal(model.state_dict()["backbone.conv1.conv.weight"], classifier.state_dict()["conv1.conv.weight"])
    transform = next(m for m in model.modules() if type(m).__name__ == "GoogLeNetInputTransform")
    assert transform.enabled
    with pytest.raises(ConfigError, match=r"googlenet.imagenet expect imagenet input"):
        from fcnseg.weights.resolve import backbone_weights

        backbone_weights("imagenet", "googlenet", "caffe_voc")


def test_a_cached_checkpoint_is_an_ordinary_checkpoint(mirror, scaled_registry, fcnseg_home) -> None:
    write_caffemodel(mirror.root / FILE, "voc-fcn8s")
    path = fcnseg.weights.fetch_weights("fcn8s_vgg16.voc")
    model, _ = load_checkpoint(path)
    assert path == fcnseg_home / "weights" / "fcn8s_vgg16.voc" / "model.safetensors" and model.arch == "fcn8s_vgg16"
    assert fcnseg.weights.is_cached(get_weights("fcn8s_vgg16.voc"))


def test_the_loopback_benchmark_writes_the_release_layout(tmp_path) -> None:
    """benchmarks/bench_weights_loopback.py streams the protobuf wire format itself (a 513 MB message would not fit in
    Python lists): what it writes reads back blob for blob and converts as the release's FCN-8s."""
    import importlib.util
    from pathlib import Path

    from fcnseg.convert import read_caffemodel

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_weights_loopback.py"
    spec = importlib.util.spec_from_file_location("bench_weights_loopback", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    layers = bench.fcn8s_layers(W)
    size = bench.write_caffemodel_stream(tmp_path / "f.caffemodel", layers)
    assert size == (tmp_path / "f.caffemodel").stat().st_size
    read = read_caffemodel(tmp_path / "f.caffemodel")
    assert [layer.name for layer in read] == list(layers)
    for layer in read:
        for got, want in zip(layer.blobs, layers[layer.name], strict=True):
            np.testing.assert_array_equal(got, want)
    model, _ = convert_caffe(tmp_path / "f.caffemodel", "voc-fcn8s", width=W)
    assert torch.equal(model.state_dict()["fc6.weight"], torch.from_numpy(layers["fc6"][0]))


@pytest.mark.parametrize(
    "args",
    [
        ["--model", "fcn8s_vgg16", "--weights", "voc"],
        ["--weights", "fcn8s_vgg16.voc"],
        ["--checkpoint", "fcn8s_vgg16.voc"],
    ],
)
def test_serve_takes_registry_weights(args, mirror, scaled_registry, monkeypatch, capsys) -> None:
    pytest.importorskip("fastapi", reason="the serve extra: pip install 'fcnseg[serve]'")
    import fcnseg.serve
    import fcnseg.serve.server
    from fcnseg.cli.main import main

    write_caffemodel(mirror.root / FILE, "voc-fcn8s")
    served = []
    real = fcnseg.serve.create_app
    monkeypatch.setattr(fcnseg.serve, "create_app", lambda seg, **kw: served.append(seg) or real(seg, **kw))
    monkeypatch.setattr(fcnseg.serve.server, "run_server", lambda app, sock, limits: None)  # bound, not served
    with socket.socket() as probe:  # a port free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert main(["serve", *args, "--device", "cpu", "--port", str(port)]) == 0
    assert served[0].classes[15] == "person" and served[0].preprocessing.bgr
    assert f"serving {args[-1]} on http://127.0.0.1:{port}/" in capsys.readouterr().out
    assert mirror.counts[FILE] == 1


@pytest.mark.slow
def test_tune_takes_registry_weights(mirror, scaled_registry, capsys) -> None:
    pytest.importorskip("onnxruntime", reason="the onnx extra: pip install 'fcnseg[onnx]'")
    from fcnseg.cli.main import main

    write_caffemodel(mirror.root / FILE, "voc-fcn8s")
    assert (
        main(["tune", "--model", "fcn8s_vgg16", "--weights", "voc", "--sizes", "40x30", "--engines", "onnxruntime"])
        == 0
    )
    assert "40x30:" in capsys.readouterr().out and mirror.counts[FILE] == 1


def test_eval_of_registry_weights_defaults_to_their_dataset(tmp_path, mirror, scaled_registry, capsys) -> None:
    from fcnseg.cli.main import main

    write_caffemodel(mirror.root / FILE, "voc-fcn8s")
    assert main(["eval", "--weights", "fcn8s_vgg16.voc", "--root", str(tmp_path / "no-voc"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "VOCdevkit folder not found" in err  # the VOC dataset, by default: the weights' own
    args = ["eval", "--weights", "fcn8s_vgg16.voc", "--dataset", "synthetic", "--split", "val", "--max-images", "2"]
    assert main([*args, "--device", "cpu", "--engine", "torch"]) == 0
    assert "mean IU" in capsys.readouterr().out
