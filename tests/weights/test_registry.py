"""The registry's table: the release's 14 files under their real names, the published checksums and figures of
SPEC §5/§6, sizes that agree with the nets, names resolved (or refused) as a user types them, and ``fcnseg weights``."""

from __future__ import annotations

import json

import pytest

from fcnseg.cli.main import main
from fcnseg.convert.caffe import REFERENCE_NETS
from fcnseg.errors import ModelError
from fcnseg.runtime.model_source import ModelSpec
from fcnseg.weights import get_weights, list_weights
from fcnseg.weights.entries import CAFFE_TRUNKS, REFERENCE, TORCHFCN, TORCHVISION
from fcnseg.weights.resolve import resolve_spec
from fcnseg.weights.table import is_weights_name
from tests.weights.files import reference_model

RELEASE_FILES = [
    "fcn32s-heavy-pascal.caffemodel",
    "fcn16s-heavy-pascal.caffemodel",
    "fcn8s-heavy-pascal.caffemodel",
    "fcn8s-atonce-pascal.caffemodel",
    "fcn-alexnet-pascal.caffemodel",
    "siftflow-fcn32s-heavy.caffemodel",
    "siftflow-fcn16s-heavy.caffemodel",
    "siftflow-fcn8s-heavy.caffemodel",
    "nyud-fcn32s-color-heavy.caffemodel",
    "nyud-fcn32s-hha-heavy.caffemodel",
    "nyud-fcn32s-color-hha-heavy.caffemodel",
    "pascalcontext-fcn32s-heavy.caffemodel",
    "pascalcontext-fcn16s-heavy.caffemodel",
    "pascalcontext-fcn8s-heavy.caffemodel",
]


def test_the_release_s_14_files_under_their_names_and_urls() -> None:
    assert [w.file.name for w in REFERENCE] == RELEASE_FILES
    for w in REFERENCE:
        ref = REFERENCE_NETS[w.net]
        assert w.file.url == f"http://dl.caffe.berkeleyvision.org/{w.file.name}"
        assert w.model == ref.arch and w.preprocess == ref.preprocessing and w.class_names() == ref.classes
        assert w.format == "caffe" and not w.backbone and w.eval_data
    assert len({w.name for w in list_weights()}) == len(list_weights())


def test_published_checksums_and_drive_ids_of_spec_section_6() -> None:
    sums = {w.file.name: w.file.checksum for w in (*REFERENCE, *TORCHFCN, *CAFFE_TRUNKS)}
    assert sums["fcn8s-heavy-pascal.caffemodel"] == "sha1:c449ea74dd7d83751d1357d6a8c323fcf4038962"
    assert sums["fcn32s-heavy-pascal.caffemodel"] == "sha1:05eb922d7829c39448f57e5ab9d8cd75d6c0be6d"
    assert sums["VGG_ILSVRC_16_layers.caffemodel"] == "sha1:9363e1f6d65f7dba68c4f27a1e62105cdf6c4e24"
    assert sums["bvlc_reference_caffenet.caffemodel"] == "sha1:4c8d77deb20ea792f84eb5e6d0a11ca0a8660a46"
    assert sums["bvlc_googlenet.caffemodel"] == "sha1:405fc5acd08a3bb12de8ee5e23a96bec22f08204"
    assert sum(s is None for s in sums.values()) == 12  # the release's other files: pinned on first download
    drive = {w.file.name: (w.file.drive_id, w.file.checksum) for w in (*TORCHFCN, CAFFE_TRUNKS[1])}
    assert drive == {
        "fcn32s_from_caffe.pth": ("11k2Q0bvRQgQbT6-jYWeh6nmAsWlSCY3f", "md5:d3eb467a80e7da0468a20dfcbc13e6c8"),
        "fcn16s_from_caffe.pth": ("1bctu58B6YH9bu6lBBSBB2rUeGlGhYLoP", "md5:a2d4035f669f09483b39c9a14a0d6670"),
        "fcn8s_from_caffe.pth": ("1ieXWyoG68xqoHJPWdyrDyaIaaWlfmUxI", "md5:de93e540ec79512f8770033849c8ae89"),
        "fcn8s-atonce_from_caffe.pth": ("0B9P1L--7Wd2vblE1VUIxV1o2d2M", "md5:bfed4437e941fef58932891217fe6464"),
        "vgg16_from_caffe.pth": ("1adDBTGY3GcEB_47dvcibajyzi872RAs3", "md5:aa75b158f4181e7f6230029eb96c1b13"),
    }
    assert all(w.file.url == f"https://drive.google.com/uc?id={w.file.drive_id}" for w in TORCHFCN)


def test_published_metrics_of_spec_section_5() -> None:
    mean_iu = {w.name: w.metrics.get("mean_iu") for w in (*REFERENCE, *TORCHFCN)}
    assert [mean_iu[f"{m}.voc"] for m in ("fcn32s_vgg16", "fcn16s_vgg16", "fcn8s_vgg16")] == [63.6, 65.0, 65.5]
    assert mean_iu["fcn8s_atonce_vgg16.voc"] == 65.4 and mean_iu["fcn32s_alexnet.voc"] == 48.0
    assert [mean_iu[f"{m}.pascalcontext"] for m in ("fcn32s_vgg16", "fcn16s_vgg16", "fcn8s_vgg16")] == [
        35.1,
        37.6,
        37.8,
    ]
    assert [mean_iu[f"{m}.voc-torchfcn"] for m in ("fcn32s_vgg16", "fcn16s_vgg16", "fcn8s_vgg16")] == [
        62.84,
        64.91,
        65.49,
    ]
    assert get_weights("fcn16s_vgg16.siftflow").metrics == {
        "pixel_accuracy": 85.2,
        "mean_accuracy": 51.7,
        "mean_iu": 39.5,
        "fw_iu": 76.1,
        "geo_accuracy": 94.3,
    }
    assert get_weights("fcn32s_vgg16.nyud-color-hha").metrics["mean_iu"] == 32.8
    assert get_weights("vgg16.imagenet").published() == {"acc@1": 71.592, "acc@5": 90.382}  # torchvision's enum


@pytest.mark.parametrize("entry", REFERENCE, ids=lambda w: w.name)
def test_listed_sizes_are_the_nets_weights(entry) -> None:
    import torch

    with torch.device("meta"):
        model = reference_model(entry.net, width=1.0)
    mib = 4 * sum(v.numel() for v in model.state_dict().values()) / 2**20
    assert entry.file.size_mb == pytest.approx(mib, abs=0.06)
    assert entry.name == "fcn8s_vgg16.voc" or entry.file.size_mb > 200  # SPEC: fcn8s-heavy-pascal is 513 MB
    assert get_weights("fcn8s_vgg16.voc").file.size_mb == 513.0


def test_torchvision_entries_come_from_torchvision_s_enums() -> None:
    import torchvision.models as tvm

    for w in TORCHVISION:
        f = w.source_file()
        member = w.torchvision_member()
        assert isinstance(member, tvm.WeightsEnum) and f.url == member.url and f.name == member.url.rsplit("/", 1)[1]
        assert f.checksum == "sha256-prefix:" + f.name.rsplit("-", 1)[1].split(".")[0] and w.preprocessing == "imagenet"
    assert {w.model for w in TORCHVISION} == {
        "vgg16",
        "alexnet_tv",
        "googlenet",
        "resnet18",
        "resnet50",
        "resnet101",
        "mobilenet_v3_large",
    }


NAMES = [("voc", True), ("fcn8s_vgg16.voc", True), ("voc-torchfcn", True), ("w.safetensors", False)]
NAMES += [("runs/a/best.safetensors", False), ("x.pth", False), ("hf://a/b", False)]


@pytest.mark.parametrize("text, named", NAMES)
def test_what_is_spelled_as_a_registry_name(text, named) -> None:
    assert is_weights_name(text) is named


def test_unknown_names_are_one_line_with_the_choices() -> None:
    with pytest.raises(ModelError, match=r"unknown weights 'vco' for fcn8s_vgg16: fcn8s_vgg16 has voc, siftflow, "):
        get_weights("vco", "fcn8s_vgg16")
    with pytest.raises(ModelError, match=r"weights 'voc' name no model: give the model too, e.g. fcn32s_vgg16.voc"):
        get_weights("voc")
    with pytest.raises(ModelError, match=r"weights fcn8s_vgg16.voc are for fcn8s_vgg16, not fcn16s_vgg16"):
        get_weights("fcn8s_vgg16.voc", "fcn16s_vgg16")
    with pytest.raises(ModelError, match=r"did you mean fcn8s_vgg16.voc"):
        get_weights("fcn8s_vgg16.vco")
    with pytest.raises(ModelError, match=r"unknown weights 'vco' .*; no file 'vco' exists either"):
        resolve_spec(ModelSpec(model="fcn8s_vgg16", weights="vco"))
    with pytest.raises(ModelError, match=r"vgg16.imagenet-caffe are ImageNet trunk weights"):
        resolve_spec(ModelSpec(weights="vgg16.imagenet-caffe"))


def test_files_are_left_to_the_file_loader(tmp_path) -> None:
    spec = ModelSpec(model="fcn8s_vgg16", weights=str(tmp_path / "w.safetensors"))
    assert resolve_spec(spec) == spec
    (tmp_path / "voc").write_bytes(b"")  # a file called like a tag is the user's file
    spec = ModelSpec(model="fcn8s_vgg16", weights=str(tmp_path / "voc"))
    assert resolve_spec(spec) == spec
    assert resolve_spec(ModelSpec(checkpoint="best.safetensors")) == ModelSpec(checkpoint="best.safetensors")


def test_fcnseg_weights_lists_every_entry_and_what_is_cached(capsys) -> None:
    assert main(["weights"]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = out[1 : 1 + len(list_weights())]
    assert out[0].split()[:4] == ["model", "tag", "classes", "size"] and "cached" in out[0]
    for w, row in zip(list_weights(), rows, strict=True):
        assert row.split()[:2] == [w.model, w.tag] and row.endswith("no")
    text = "\n".join(rows)
    for name in RELEASE_FILES:
        assert get_weights(next(w.name for w in REFERENCE if w.file.name == name))
    assert "dl.caffe.berkeleyvision.org (sha1)" in text and "drive.google.com (md5)" in text
    assert "mean IU 65.5" in rows[2] and "513 MB" in rows[2] and "21 PASCAL VOC" in rows[2]
    assert main(["weights", "fcn8s_vgg16.voc", "--json"]) == 0
    (record,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert record["file"] == "fcn8s-heavy-pascal.caffemodel" and record["cached"] is False
    assert record["metrics"] == {"mean_iu": 65.5} and record["licence"]
    assert main(["weights", "voc"]) == 0  # a tag: every model's
    rows = [line.split()[:2] for line in capsys.readouterr().out.splitlines()[1:] if line.strip()][:-1]
    assert rows == [[w.model, "voc"] for w in REFERENCE[:5]]


def test_each_nyud_stream_gets_the_release_s_own_mean() -> None:
    """The release subtracts the colour mean from photos and the HHA mean (SPEC §1.1) from HHA images."""
    from fcnseg.preprocessing import CAFFE_NYUD, CAFFE_NYUD_HHA

    by_net = {w.net: w.preprocess for w in REFERENCE}
    assert by_net["nyud-fcn32s-hha"] == CAFFE_NYUD_HHA == REFERENCE_NETS["nyud-fcn32s-hha"].preprocessing
    assert CAFFE_NYUD_HHA.mean == (132.431, 94.076, 118.477) and CAFFE_NYUD_HHA.bgr
    assert by_net["nyud-fcn32s-color"] == CAFFE_NYUD
