"""The bad-input matrix of docs/RELIABILITY.md, through the public entry points.

Every case must end in a correct result or a one-line error naming the file or key (exit 2 for
argument/config/file errors; predict exits 1 after skipping unreadable inputs), never a traceback,
and never leave a partial output.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import fcnseg
from fcnseg.cli.main import main
from fcnseg.engine.checkpoint import CheckpointInfo, model_kwargs, save_checkpoint
from fcnseg.io import read_image


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _bomb() -> bytes:
    """A valid PNG header declaring 50000×50000 pixels (2.5 G) in a few bytes."""
    ihdr = struct.pack(">IIBBBBB", 50000, 50000, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b""))
        + _png_chunk(b"IEND", b"")
    )


def _jpeg(rgb=(10, 200, 30), size=(6, 4), mode="RGB", exif_orientation=None) -> bytes:
    img = Image.new(mode, size, rgb if mode == "RGB" else (0, 0, 0, 0))
    buf = io.BytesIO()
    kwargs = {}
    if exif_orientation:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        kwargs["exif"] = exif
    img.save(buf, format="JPEG", quality=95, **kwargs)
    return buf.getvalue()


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _palette_image() -> Image.Image:
    img = Image.new("P", (7, 5), 3)
    img.putpalette([0, 0, 0] * 3 + [10, 20, 30] + [0, 0, 0] * 252)
    return img


GOOD_JPEG = _jpeg()
#: name → (file bytes, expected predict outcome: "ok" or a text the skip message must contain)
IMAGE_CASES = {
    "truncated.jpg": (GOOD_JPEG[: len(GOOD_JPEG) // 2], "truncated"),
    "corrupt.png": (_png(Image.new("RGB", (5, 5)))[:30] + b"\x00" * 40, "not an image"),
    "zero-byte.jpg": (b"", "not an image"),
    "text.jpg": (b"just some text, not a photo\n", "not an image"),
    "bomb.png": (_bomb(), "too large"),
    "grey.png": (_png(Image.new("L", (7, 5), 100)), "ok"),
    "rgba.png": (_png(Image.new("RGBA", (7, 5), (200, 100, 50, 255))), "ok"),
    "16bit.png": (_png(Image.fromarray(np.full((5, 7), 65535, np.uint16))), "ok"),
    "cmyk.jpg": (_jpeg(mode="CMYK", size=(7, 5)), "ok"),
    "palette.png": (_png(_palette_image()), "ok"),
    "exif-rotated.jpg": (_jpeg(size=(6, 4), exif_orientation=6), "ok"),
    "one-pixel.png": (_png(Image.new("RGB", (1, 1), (1, 2, 3))), "ok"),
    "ünïcødé-名前.png": (_png(Image.new("RGB", (9, 3), (9, 9, 9))), "ok"),
}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ck")
    model = fcnseg.get_model("fcn8s_vgg16", num_classes=4, width=1 / 16)
    info = CheckpointInfo(arch=model.arch, model_kwargs=model_kwargs(model, 1 / 16), classes=["bg", "a", "b", "c"])
    return save_checkpoint(root / "m", model, info)


def _no_traceback(err: str, code: int) -> None:
    assert "Traceback" not in err
    if code == 2:
        assert len(err.strip().splitlines()) == 1, err


def test_image_matrix_through_predict(tmp_path, checkpoint, capsys) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name, (content, _) in IMAGE_CASES.items():
        (inputs / name).write_bytes(content)
    out = tmp_path / "out"
    code = main(["predict", "--checkpoint", str(checkpoint), str(inputs), "--out", str(out)])
    captured = capsys.readouterr()
    _no_traceback(captured.err, code)
    assert code == 1  # some inputs were skipped
    skipped = [line for line in captured.err.splitlines() if line.startswith("skipped:")]
    for name, (_, expected) in IMAGE_CASES.items():
        stem = Path(name).stem
        if expected == "ok":
            mask = Image.open(out / f"{stem}.png")
            assert mask.size == read_image(inputs / name).shape[1::-1], name
        else:
            assert not (out / f"{stem}.png").exists(), name  # nothing written for a failed input
            line = next(s for s in skipped if name in s)
            assert expected in line, (name, line)
    assert len(skipped) == sum(1 for _, e in IMAGE_CASES.values() if e != "ok")
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_image_modes_are_converted_correctly(tmp_path) -> None:
    for name, (content, _) in IMAGE_CASES.items():
        (tmp_path / name).write_bytes(content)
    assert read_image(tmp_path / "grey.png")[0, 0].tolist() == [100, 100, 100]
    assert read_image(tmp_path / "rgba.png")[0, 0].tolist() == [200, 100, 50]
    assert read_image(tmp_path / "16bit.png")[0, 0].tolist() == [255, 255, 255]
    assert read_image(tmp_path / "cmyk.jpg")[2, 3].tolist() == [255, 255, 255]  # CMYK (0,0,0,0) is white
    assert read_image(tmp_path / "palette.png")[0, 0].tolist() == [10, 20, 30]
    assert read_image(tmp_path / "exif-rotated.jpg").shape == (6, 4, 3)  # 6×4 stored, rotated 90° by EXIF
    assert read_image(tmp_path / "one-pixel.png").shape == (1, 1, 3)


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
    _no_traceback(err, code)
    assert code == 2 and message in err, err
    for partial in ("o", "run", "m.onnx", "w.safetensors"):
        assert not (tmp_path / partial).exists() or partial == "run"


def test_dataset_problems_are_reported_by_data_check(tmp_path, capsys) -> None:
    from tests.data.fixtures import jpeg, palette_png

    for i, (h, w) in enumerate([(8, 10), (8, 10), (8, 10)]):
        jpeg(tmp_path / "images" / f"{i}.jpg", h, w, seed=i)
    palette_png(tmp_path / "masks" / "0.png", np.zeros((8, 10), np.uint8))
    palette_png(tmp_path / "masks" / "1.png", np.zeros((5, 5), np.uint8))  # wrong size
    bad = np.zeros((8, 10), np.uint8)
    bad[0, 0] = 9  # label ≥ the class count
    palette_png(tmp_path / "masks" / "2.png", bad)
    code = main(["data", "check", str(tmp_path), "--dataset", "folder"])
    out = capsys.readouterr().out
    assert code == 1
    assert "1.png: mask is 5×5 but its image is 10×8" in out
    ds = fcnseg.data.SegmentationFolder(tmp_path / "images", tmp_path / "masks", classes=["bg", "a", "b"])
    with pytest.raises(fcnseg.errors.DataError, match=r"2\.png: labels \[9\] are outside 0\.\.2"):
        ds[2]
