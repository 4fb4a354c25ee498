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
from fcnseg.io import read_image
from fcnseg.runtime.checkpoint import CheckpointInfo, model_kwargs, save_checkpoint


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
    info = CheckpointInfo(arch=model.arch, model_kwargs=model_kwargs(model), classes=["bg", "a", "b", "c"])
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


# ---------------------------------------------------------------------------------------------------
# Second pass (docs/RELIABILITY.md "Second pass"): each case failed before its fix.
# ---------------------------------------------------------------------------------------------------


def _png_with(width: int, height: int, *, extra: bytes = b"", depth: int = 8, colour: int = 0) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + extra
        + _png_chunk(b"IDAT", zlib.compress(b""))
        + _png_chunk(b"IEND", b"")
    )


def test_header_pixel_limit_refuses_before_decoding(tmp_path) -> None:
    import time

    path = tmp_path / "225mp.png"
    path.write_bytes(_png_with(15000, 15000))  # 225 M pixels in a few bytes (Pillow alone allows < 400 M)
    started = time.perf_counter()
    with pytest.raises(fcnseg.errors.DataError, match=r"225mp\.png: image too large: 15000×15000 exceeds"):
        read_image(path)
    assert time.perf_counter() - started < 1.0  # refused from the header, nothing decoded


def test_pixel_limit_is_configurable(tmp_path, monkeypatch) -> None:
    path = tmp_path / "small.png"
    Image.new("RGB", (20, 10)).save(path)
    monkeypatch.setenv("FCNSEG_MAX_PIXELS", "100")
    with pytest.raises(fcnseg.errors.DataError, match="exceeds the limit of 100 pixels"):
        read_image(path)
    monkeypatch.setenv("FCNSEG_MAX_PIXELS", "lots")
    with pytest.raises(fcnseg.errors.DataError, match="FCNSEG_MAX_PIXELS='lots'"):
        read_image(path)


def test_postscript_named_png_never_reaches_ghostscript(tmp_path, monkeypatch) -> None:
    from PIL import EpsImagePlugin

    called = []
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", lambda *a, **k: called.append(a))
    path = tmp_path / "evil.png"
    path.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    with pytest.raises(fcnseg.errors.DataError, match=r"evil\.png: not an image file fcnseg reads"):
        read_image(path)
    assert not called


def test_fifo_named_like_an_image_does_not_block(tmp_path, checkpoint, capsys) -> None:
    import os
    import threading

    inputs = tmp_path / "in"
    inputs.mkdir()
    os.mkfifo(inputs / "pipe.png")
    (inputs / "ok.png").write_bytes(_png(Image.new("RGB", (9, 7), (5, 5, 5))))
    result = {}
    worker = threading.Thread(
        target=lambda: result.setdefault(
            "code", main(["predict", "--checkpoint", str(checkpoint), str(inputs), "--out", str(tmp_path / "out")])
        ),
        daemon=True,
    )
    worker.start()
    worker.join(60)
    if worker.is_alive():  # unblock the reader so the test process can exit, then fail
        with open(inputs / "pipe.png", "wb"):
            pass
        pytest.fail("predict blocked on a FIFO")
    assert result["code"] == 1 and "pipe.png: a FIFO, not an image file" in capsys.readouterr().err
    assert (tmp_path / "out" / "ok.png").is_file()


def _png16(values: np.ndarray, sbit: int | None = None) -> bytes:
    raw = _png(Image.fromarray(values.astype(np.uint16)))
    if sbit is None:
        return raw
    cut = raw.index(b"IDAT") - 4  # insert sBIT before the first IDAT chunk
    return raw[:cut] + _png_chunk(b"sBIT", bytes([sbit])) + raw[cut:]


def test_high_bit_depths_are_scaled_by_their_depth_not_their_maximum(tmp_path) -> None:
    ramp = np.array([[0, 1024, 2048, 4095]])
    (tmp_path / "12bit.png").write_bytes(_png16(ramp))  # a 12-bit scan in a 16-bit PNG, no sBIT
    assert read_image(tmp_path / "12bit.png")[0, :, 0].tolist() == [0, 64, 128, 255]
    (tmp_path / "sbit.png").write_bytes(_png16(np.array([[0, 512, 1023]]), sbit=10))  # sBIT says 10 bits
    assert read_image(tmp_path / "sbit.png")[0, :, 0].tolist() == [0, 128, 255]
    (tmp_path / "full.png").write_bytes(_png16(np.array([[0, 32768, 65535]])))
    assert read_image(tmp_path / "full.png")[0, :, 0].tolist() == [0, 128, 255]


def test_float_images_by_range_and_alpha_modes_composited(tmp_path) -> None:
    Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32)).save(tmp_path / "unit.tif")
    assert read_image(tmp_path / "unit.tif")[0, :, 0].tolist() == [0, 128, 255]
    Image.fromarray(np.array([[0.0, 100.0, 255.0]], np.float32)).save(tmp_path / "bytes.tif")
    assert read_image(tmp_path / "bytes.tif")[0, :, 0].tolist() == [0, 100, 255]
    Image.fromarray(np.array([[-3.0, 900.0]], np.float32)).save(tmp_path / "hdr.tif")
    with pytest.raises(fcnseg.errors.DataError, match=r"hdr\.tif: float image with values in \[-3, 900\]"):
        read_image(tmp_path / "hdr.tif")
    Image.new("LA", (2, 2), (200, 0)).save(tmp_path / "la.png")  # grey, fully transparent
    assert read_image(tmp_path / "la.png")[0, 0].tolist() == [0, 0, 0]  # composited over black, as RGBA is


def _forge(path: Path, checkpoint: Path, **changes) -> Path:
    """A copy of ``checkpoint`` whose fcnseg metadata has ``changes`` (dotted keys reach into model_kwargs)."""
    import json

    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(checkpoint), framework="pt") as f:
        meta = json.loads(f.metadata()["fcnseg"])
    for key, value in changes.items():
        target = meta
        *parents, leaf = key.split("__")
        for p in parents:
            target = target[p]
        target[leaf] = value
    tensors = load_file(str(checkpoint))
    save_file(tensors, str(path), metadata={"fcnseg": json.dumps(meta)})
    return path


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"model_kwargs__num_classes": 2_000_000}, "model_kwargs.num_classes: expected null or an integer 1..100000"),
        ({"model_kwargs__num_classes": 90_000, "classes": []}, "weights do not fit the fcn8s_vgg16 its metadata"),
        ({"model_kwargs__width": 1000.0}, "model_kwargs.width: expected a number in (0, 16]"),
        ({"model_kwargs__num_classes": "4"}, "model_kwargs.num_classes: expected null or an integer"),
        ({"model_kwargs__heads": [1, 2]}, "model_kwargs.heads: expected null or a mapping"),
        ({"model_kwargs__evil": 1}, "model_kwargs.evil: unknown build argument"),
        ({"classes": ["bg"]}, "classes lists 1 names for a 4-class model"),
        ({"classes": "bg,a,b,c"}, "metadata classes: expected a list of class names"),
        ({"preprocessing": {"bgr": True, "scale": 1.0, "mean": [1, 2, 3], "std": [1, 0, 1]}}, "preprocessing.std"),
        ({"preprocessing": {"bgr": True, "scale": 1.0, "mean": [1, 2]}}, "preprocessing.mean has 2 values"),
        ({"step": -5}, "metadata step: expected a non-negative integer"),
        ({"arch": 7}, "metadata arch: expected a model name"),
    ],
)
def test_malformed_checkpoint_metadata_is_one_line_before_any_allocation(
    tmp_path, checkpoint, capsys, changes, message
) -> None:
    import time

    forged = _forge(tmp_path / "forged.safetensors", checkpoint, **changes)
    started = time.perf_counter()
    code = main(["predict", "--checkpoint", str(forged), str(tmp_path), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    _no_traceback(err, code)
    assert code == 2 and message in err, err
    assert time.perf_counter() - started < 5  # 2 M classes would allocate gigabytes (minutes) if built


def test_nan_weights_are_refused(tmp_path) -> None:
    import torch

    model = fcnseg.get_model("fcn8s_vgg16", num_classes=3, width=1 / 16)
    with torch.no_grad():
        model.score_fr.weight[0, 0] = float("nan")
    info = CheckpointInfo(arch=model.arch, model_kwargs=model_kwargs(model))
    path = save_checkpoint(tmp_path / "nan", model, info)
    with pytest.raises(fcnseg.errors.CheckpointError, match=r"score_fr\.weight holds NaN or infinite values"):
        fcnseg.runtime.checkpoint.load_checkpoint(path)


def test_evil_pickle_refusal_is_one_line(tmp_path, capsys) -> None:
    import os
    import pickle

    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"w": Evil()}))
    code = main(["predict", "--model", "fcn8s_vgg16", "--weights", str(tmp_path / "evil.pt"), str(tmp_path)])
    err = capsys.readouterr().err
    _no_traceback(err, code)
    assert code == 2 and "cannot load weights safely" in err and len(err.strip().splitlines()) == 1
    assert not marker.exists()


@pytest.mark.parametrize(
    "text, overrides, message",
    [
        (
            "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
            "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
            "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n",
            [],
            "alias bomb",
        ),
        ("train:\n  lr: " + "[" * 5000 + "]" * 5000 + "\n", [], "nested deeper than"),
        (b"train:\n  lr: \xff\xfe\n", [], "not UTF-8 text"),
        ("- 1\n- 2\n", [], "top level must be a mapping"),
        ("", ["train.lr=[1"], "override 'train.lr=[1': not valid YAML"),
        ("", ["train.iter_size=0"], "train.iter_size: 0"),
        ("", ["train.max_iter=0"], "train.max_iter: 0"),
        ("", ["train.weight_decay=-0.1"], "train.weight_decay: -0.1"),
        ("", ["train.lr=-1"], "train.lr: -1.0"),
        ("", ["train.momentum=1.5"], "train.momentum: 1.5"),
        ("", ["data.batch_size=0"], "data.batch_size: 0"),
        ("", ["train.eval_every=0"], "train.eval_every: 0"),
        ("", ["data.workers=-1"], "data.workers: -1"),
        ("", ["train.device=gpu7"], "train.device: 'gpu7'"),
        ("", ["train.lr=.nan"], "not a finite number"),
        ("", ["train.schedule=cosine"], "train.schedule: 'cosine'"),
        ("", ["data.options={nn: 3}", "model.width=0.0625", "train.max_iter=1"], "data.options {'nn': 3}"),
    ],
)
def test_bad_configs_are_one_line(tmp_path, capsys, text, overrides, message) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    sets = ["--set", *overrides] if overrides else []
    code = main(["train", str(path), "--out", str(tmp_path / "run"), "--quiet", *sets])
    err = capsys.readouterr().err
    _no_traceback(err, code)
    assert code == 2 and message in err, err


def test_stale_world_size_is_refused_at_once(tmp_path, capsys, monkeypatch) -> None:
    for var in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WORLD_SIZE", "4")
    (tmp_path / "c.yaml").write_text("model: {name: fcn32s_vgg16, width: 0.0625}\ntrain: {max_iter: 1}\n")
    for argv in (
        ["train", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "r"), "--quiet"],
        ["predict", "--model", "fcn8s_vgg16", "--weights", str(tmp_path / "w.pt"), str(tmp_path)],
    ):
        code = main(argv)
        err = capsys.readouterr().err
        _no_traceback(err, code)
        assert code == 2 and "WORLD_SIZE=4 is set but RANK, MASTER_ADDR, MASTER_PORT are not" in err, err


def test_second_run_into_a_locked_folder_is_refused(tmp_path) -> None:
    from fcnseg.config import load_config
    from fcnseg.train.runlock import run_lock
    from fcnseg.train.trainer import fit

    cfg = load_config(None, ["model.name=fcn32s_vgg16", "model.width=0.0625", "train.max_iter=1"])
    with run_lock(tmp_path / "run"), pytest.raises(fcnseg.errors.ConfigError, match="another fcnseg run"):
        fit(cfg, tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "log.csv").exists()


def test_init_from_that_copies_nothing_is_refused(tmp_path) -> None:
    import torch

    from fcnseg.train.build import init_from

    torch.save({"something.else": torch.zeros(3)}, tmp_path / "other.pt")
    model = fcnseg.get_model("fcn8s_vgg16", num_classes=3, width=1 / 16)
    with pytest.raises(fcnseg.errors.ConfigError, match="no layer of it fits fcn8s_vgg16"):
        init_from(model, tmp_path / "other.pt")


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
    image.write_bytes(_png(Image.new("RGB", (9, 7))))
    (tmp_path / "afile").write_text("in the way")
    code = main(["predict", "--checkpoint", str(checkpoint), str(image), "--out", str(tmp_path / "afile" / "o")])
    err = capsys.readouterr().err
    _no_traceback(err, code)
    assert code == 2 and "afile" in err and ("a file is in the way" in err or "Not a directory" in err), err

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "o" / "x.png"))

    monkeypatch.setattr("fcnseg.io.os.fsync", full)
    code = main(["predict", "--checkpoint", str(checkpoint), str(image), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    _no_traceback(err, code)
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


def _fuzz_bytes(rng: np.random.Generator, seeds: list[bytes]) -> bytes:
    base = bytearray(seeds[int(rng.integers(len(seeds)))])
    for _ in range(int(rng.integers(1, 8))):
        if base and rng.random() < 0.7:
            base[int(rng.integers(len(base)))] = int(rng.integers(256))
        else:
            cut = int(rng.integers(len(base) + 1))
            base = base[:cut] + bytes(rng.integers(0, 256, int(rng.integers(0, 64)), dtype=np.uint8))
    return bytes(base)


def test_fuzz_image_reader_checkpoint_reader_and_config_loader(tmp_path, checkpoint) -> None:
    """Random and mutated bytes: every failure is an FCNError (one line), never another exception."""
    import json

    from fcnseg.config import load_config
    from fcnseg.runtime.checkpoint import load_checkpoint

    rng = np.random.default_rng(2026)
    images = [content for content, _ in IMAGE_CASES.values() if content][:8]
    ckpt_bytes = checkpoint.read_bytes()
    header_len = int.from_bytes(ckpt_bytes[:8], "little")
    configs = [
        b"train:\n  lr: 1e-4\n  max_iter: 5\n",
        b"model: {name: fcn8s_vgg16, width: 0.5}\ndata: {options: {n: 3}}\n",
    ]
    failures = []
    for i in range(150):
        target = tmp_path / f"f{i}"
        kind = i % 3
        if kind == 0:
            target = target.with_suffix(".png")
            target.write_bytes(_fuzz_bytes(rng, images))
            call = lambda p=target: read_image(p)  # noqa: E731
        elif kind == 1:
            target = target.with_suffix(".safetensors")
            meta = json.loads(json.loads(ckpt_bytes[8 : 8 + header_len])["__metadata__"]["fcnseg"])
            key = list(meta)[int(rng.integers(len(meta)))]
            meta[key] = [None, -1, "x", 1e308, [1] * 3, {"a": 1}, True][int(rng.integers(7))]
            header = json.loads(ckpt_bytes[8 : 8 + header_len])
            header["__metadata__"]["fcnseg"] = json.dumps(meta)
            blob = json.dumps(header).encode()
            data = len(blob).to_bytes(8, "little") + blob + ckpt_bytes[8 + header_len :]
            target.write_bytes(_fuzz_bytes(rng, [data]) if rng.random() < 0.3 else data)
            call = lambda p=target: load_checkpoint(p)  # noqa: E731
        else:
            target = target.with_suffix(".yaml")
            target.write_bytes(_fuzz_bytes(rng, configs))
            call = lambda p=target: load_config(p)  # noqa: E731
        try:
            call()
        except fcnseg.errors.FCNError:
            pass
        except Exception as e:
            failures.append(f"{target.name}: {type(e).__name__}: {e}")
    assert not failures, failures[:5]
