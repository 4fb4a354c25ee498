"""The one write rule (``fcnseg.writes``) and the one writer (``fcnseg.io``): real paths, the ledger, claims, locks,
staging; temp names bounded, errors naming the target, strict JSON, label PNGs never wrapped."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest

from fcnseg.errors import ConfigError, DataError, printable
from fcnseg.io import atomic_write, clean_stale_temps, json_safe, label_png, read_label_png, write_json
from fcnseg.writes import (
    Ledger,
    check_targets,
    claim_file,
    claim_folder,
    destination,
    folder_lock,
    refuse_overlap,
    staged,
)
from tests.badinput import read_only_temp_files


def test_overlap_is_judged_by_real_paths(tmp_path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "cat.jpg").write_bytes(b"photo")
    (tmp_path / "link").symlink_to(photos)  # --out a symlink to the input folder / an input reached through one
    for out, given in [(tmp_path / "link", photos), (photos, tmp_path / "link"), (tmp_path / "link" / "m", photos)]:
        with pytest.raises(DataError, match=r"inside the input folder"):
            refuse_overlap(out, [given], folder=True)
    with pytest.raises(DataError, match=r"is the input"):  # a file output over an input file, through a symlink
        refuse_overlap(tmp_path / "link" / "cat.jpg", [photos / "cat.jpg"])
    refuse_overlap(tmp_path / "masks", [photos], folder=True)  # beside it: fine
    (tmp_path / "alias.jpg").symlink_to(photos / "cat.jpg")
    assert destination(tmp_path / "alias.jpg") == tmp_path.resolve() / "alias.jpg"  # os.replace replaces the link


def test_the_ledger_knows_what_fcnseg_wrote_whole(tmp_path) -> None:
    ledger = claim_folder(tmp_path / "out", kind="predict")
    (tmp_path / "out" / "user.png").write_bytes(b"the user's")
    ledger.claim(["a.png"])
    assert ledger.owns("a.png") and not ledger.whole("a.png")  # claimed, not yet written
    with atomic_write(tmp_path / "out" / "a.png") as f:
        f.write(b"mask")
    ledger.done(["a.png"])
    again = Ledger(tmp_path / "out")
    assert again.owner == "predict" and again.whole("a.png") and not again.owns("user.png")
    with open(again.path, "a") as f:
        f.write('{"done": {"b.png": [1,')  # a line cut by a kill
    assert Ledger(tmp_path / "out").whole("a.png")
    (tmp_path / "out" / "a.png").write_bytes(b"edited by hand")  # changed since: not complete any more
    assert not Ledger(tmp_path / "out").whole("a.png")
    with pytest.raises(DataError, match=r"user.png: a file this command did not write"):
        check_targets(again, ["a.png", "user.png"])
    check_targets(again, ["a.png", "user.png"], overwrite=True)
    with pytest.raises(DataError, match=r"would replace the input"):
        check_targets(
            again, ["user.png"], inputs={(tmp_path / "out" / "user.png").resolve(): "user.png"}, overwrite=True
        )


def test_a_fresh_folder_must_be_new_empty_or_its_makers(tmp_path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match=r"holds 1 file.* e.g. notes.txt; .*--overwrite"):
        claim_folder(tmp_path / "mine", kind="dataset", fresh=True)
    claim_folder(tmp_path / "mine", kind="dataset", fresh=True, overwrite=True)
    made = claim_folder(tmp_path / "new", kind="dataset", fresh=True, reuse=False)
    assert made.created
    (tmp_path / "new" / "x").write_text("x")
    with pytest.raises(DataError, match=r"output of an earlier fcnseg dataset"):
        claim_folder(tmp_path / "new", kind="dataset", fresh=True, reuse=False)
    claim_folder(tmp_path / "new", kind="dataset", fresh=True, reuse=True)


def test_staged_writes_land_whole_or_not_at_all(tmp_path) -> None:
    out = tmp_path / "ds"
    ledger = claim_folder(out, kind="dataset", fresh=True)
    with pytest.raises(OSError), staged(ledger) as stage:
        (stage / "a.txt").write_text("a")
        raise OSError(errno.ENOSPC, "No space left on device", str(stage / "b.txt"))
    assert not out.exists() and not list(tmp_path.iterdir())  # made by the claim, removed again: no trace
    ledger = claim_folder(out, kind="dataset", fresh=True)
    with staged(ledger) as stage:
        for name in ("a.txt", "sub/b.txt"):
            (stage / name).parent.mkdir(exist_ok=True)
            (stage / name).write_text(name)
    assert (out / "sub" / "b.txt").read_text() == "sub/b.txt" and Ledger(out).whole("sub/b.txt")
    (out / "user.txt").write_text("keep")
    with staged(Ledger(out), overwrite=True, replace_previous=True) as stage:
        (stage / "a.txt").write_text("again")
    assert not (out / "sub" / "b.txt").exists() and (out / "user.txt").read_text() == "keep"  # only its own went


def test_single_output_files_are_claimed(tmp_path) -> None:
    ckpt = tmp_path / "m.safetensors"
    ckpt.write_bytes(b"weights")
    (tmp_path / "link.onnx").symlink_to(ckpt)
    with pytest.raises(DataError, match=r"is the input"):
        claim_file(ckpt, inputs=[ckpt], overwrite=True)
    with pytest.raises(DataError, match=r"already exists; add --overwrite"):
        claim_file(tmp_path / "link.onnx", inputs=[ckpt])
    assert claim_file(tmp_path / "new.onnx", inputs=[ckpt]) == tmp_path / "new.onnx"


def test_one_writer_per_folder(tmp_path) -> None:
    with folder_lock(tmp_path, holder="fcnseg predict"):
        with pytest.raises(DataError, match=rf"another fcnseg predict \(pid {os.getpid()}\)"):
            with folder_lock(tmp_path, holder="fcnseg predict"):
                pass
        with pytest.raises(ConfigError):
            with folder_lock(tmp_path, error=ConfigError):
                pass
    with folder_lock(tmp_path):
        pass


def test_temp_names_fit_and_errors_name_the_target(tmp_path, monkeypatch) -> None:
    long_name = "x" * 240 + ".png"  # legal: 244 bytes; its temp file name must fit too
    with atomic_write(tmp_path / long_name) as f:
        f.write(b"ok")
    assert (tmp_path / long_name).read_bytes() == b"ok" and len(os.listdir(tmp_path)) == 1

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")  # a write's error names no file

    monkeypatch.setattr("fcnseg.io.os.fsync", full)
    with pytest.raises(OSError) as info:
        with atomic_write(tmp_path / "a.json") as f:
            f.write(b"{}")
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(tmp_path / "a.json")
    monkeypatch.undo()
    read_only_temp_files(monkeypatch)
    with pytest.raises(OSError) as info:
        with atomic_write(tmp_path / "b.json") as f:
            f.write(b"{}")
    assert info.value.errno == errno.EROFS and info.value.filename == str(tmp_path / "b.json")
    assert sorted(os.listdir(tmp_path)) == [long_name]


def test_only_fcnseg_temp_names_are_cleaned(tmp_path) -> None:
    ours = tmp_path / ".a.png.999999999.0123456789ab.tmp"
    users = [tmp_path / ".notes.999999999.tmp", tmp_path / ".backup.1.2.tmp"]  # look alike, are not ours
    for p in [ours, *users]:
        p.write_text("x")
    assert clean_stale_temps(tmp_path) == 1 and not ours.exists() and all(p.exists() for p in users)


def test_json_has_null_where_numbers_are_undefined(tmp_path) -> None:
    value = {"iu": [0.5, float("nan")], "x": np.float32("inf"), "n": np.int64(3), "a": np.array([np.nan])}
    assert json_safe(value) == {"iu": [0.5, None], "x": None, "n": 3, "a": [None]}
    text = write_json(tmp_path / "m.json", value).read_text()
    assert "NaN" not in text and "Infinity" not in text and json.loads(text)["iu"] == [0.5, None]


def test_label_pngs_are_never_wrapped(tmp_path) -> None:
    palette = np.zeros((256, 3), np.uint8)
    wide = np.array([[0, 299], [65535, 256]], np.uint16)
    (tmp_path / "m.png").write_bytes(label_png(wide, palette))
    assert read_label_png(tmp_path / "m.png").tolist() == wide.tolist()
    small = np.array([[0, 255]], np.int64)
    (tmp_path / "p.png").write_bytes(label_png(small, palette))
    back = read_label_png(tmp_path / "p.png")
    assert back.dtype == np.uint8 and back.tolist() == [[0, 255]]
    with pytest.raises(DataError, match=r"do not fit a PNG mask"):
        label_png(np.array([[70000]]), palette)


def test_names_are_printed_on_one_line() -> None:
    name = "cat.jpg\nwrote 5 prediction(s)\x1b[2K"
    assert printable(name) == "cat.jpg\\nwrote 5 prediction(s)\\x1b[2K" and "\n" not in printable(name)
    error = DataError("2 problems:", details=["a\nb", "c"])
    assert str(error) == "2 problems:\n  a\nb\n  c" and error.one_line_each() == ["2 problems:", "  a\\nb", "  c"]
    assert Path(printable("ok/name.png")) == Path("ok/name.png")
