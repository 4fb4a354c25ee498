"""Issue 30 through ``fcnseg predict``: no output over an input or a user's file (by real path), "complete" means
written by fcnseg and whole, one predict per folder, one input's failure stays its own, masks never wrapped, names
escaped in log lines. Each case failed before its fix (the photos were replaced, or the run stopped, or hung)."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import fcnseg
from fcnseg.cli.main import main
from tests.badinput import no_traceback, png, read_only_temp_files, without_hanging


def _photo(path: Path, size: tuple[int, int] = (44, 36), seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def _predict(checkpoint: Path, *args: str) -> list[str]:
    return ["predict", "--checkpoint", str(checkpoint), *map(str, args)]


def _refused(capsys, code: int, message: str) -> str:
    err = capsys.readouterr().err
    no_traceback(err, code)
    assert code == 2 and message in err, err
    return err


@pytest.mark.parametrize(
    "case", ["out is a symlink to the input folder", "input through a symlink", "out under a symlink"]
)
def test_symlinks_never_let_masks_replace_photos(tmp_path, checkpoint, capsys, case) -> None:
    photo = _photo(tmp_path / "photos" / "cat.png")
    before = photo.read_bytes()
    (tmp_path / "link").symlink_to(tmp_path / "photos")
    given, out = {
        "out is a symlink to the input folder": (tmp_path / "photos", tmp_path / "link"),
        "input through a symlink": (tmp_path / "link", tmp_path / "photos"),
        "out under a symlink": (tmp_path / "photos", tmp_path / "link" / "masks"),
    }[case]
    _refused(capsys, main(_predict(checkpoint, given, "--out", out)), "inside the input folder")
    assert photo.read_bytes() == before and sorted(p.name for p in (tmp_path / "photos").iterdir()) == ["cat.png"]


def test_an_input_symlink_into_out_is_not_written_over(tmp_path, checkpoint, capsys) -> None:
    kept = _photo(tmp_path / "masks" / "cat.png", seed=1)  # the user's file, in the folder given as --out
    before = kept.read_bytes()
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.png").symlink_to(kept)
    _refused(capsys, main(_predict(checkpoint, tmp_path / "photos", "--out", tmp_path / "masks")), "cat.png")
    assert kept.read_bytes() == before


def test_output_names_over_the_users_files_are_refused_unless_overwrite(tmp_path, checkpoint, capsys) -> None:
    photo = _photo(tmp_path / "photos" / "cat.jpg")
    theirs = _photo(tmp_path / "photos" / "cat.png", seed=2)  # not an input: the user's other picture
    before = theirs.read_bytes()
    argv = _predict(checkpoint, photo, "--out", tmp_path / "photos")
    _refused(capsys, main(argv), "cat.png: a file this command did not write")
    assert theirs.read_bytes() == before and not (tmp_path / "photos" / "cat_overlay.jpg").exists()
    assert main([*argv, "--overwrite"]) == 0  # said so: replaced
    assert theirs.read_bytes() != before and photo.is_file()


def test_an_input_named_grid_and_the_grid_cannot_share_grid_png(tmp_path, checkpoint, capsys) -> None:
    grid_photo, other = _photo(tmp_path / "in" / "grid.jpg"), _photo(tmp_path / "in" / "b.jpg", seed=3)
    code = main(_predict(checkpoint, grid_photo, other, "--out", tmp_path / "out", "--grid", "2"))
    _refused(capsys, code, "grid.png: would be both the grid (--grid) and an output of")
    assert not (tmp_path / "out" / "grid.png").exists()


def test_files_that_merely_bear_output_names_are_not_complete(tmp_path, checkpoint, capsys) -> None:
    _photo(tmp_path / "in" / "x.png")
    out = tmp_path / "out"
    out.mkdir()
    for name in ("x.png", "x_overlay.jpg"):  # a stranger's files, named like the outputs
        (out / name).write_bytes(b"not a prediction")
    argv = _predict(checkpoint, tmp_path / "in", "--out", out)
    _refused(capsys, main(argv), "a file this command did not write")
    assert main([*argv, "--overwrite"]) == 0 and "wrote 1 prediction(s)" in capsys.readouterr().out
    assert Image.open(out / "x.png").size == (44, 36)
    assert main(argv) == 0 and "skipped 1 already complete" in capsys.readouterr().out  # ours now, whole
    (out / "x.png").write_bytes(b"changed since")
    assert main(argv) == 0 and "wrote 1 prediction(s)" in capsys.readouterr().out  # not whole any more: redone


def test_a_second_predict_into_the_same_folder_is_refused(tmp_path, checkpoint, capsys) -> None:
    import fcntl

    _photo(tmp_path / "in" / "x.png")
    (tmp_path / "out").mkdir()
    fd = os.open(tmp_path / "out" / ".lock", os.O_RDWR | os.O_CREAT)
    try:  # held as a predict running into the folder holds it
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, str(os.getpid()).encode())
        code = main(_predict(checkpoint, tmp_path / "in", "--out", tmp_path / "out"))
        _refused(capsys, code, f"another fcnseg predict (pid {os.getpid()}) is writing this folder")
    finally:
        os.close(fd)
    assert not (tmp_path / "out" / "x.png").exists()


def test_two_predicts_side_by_side_never_both_succeed_with_a_short_manifest(tmp_path, checkpoint) -> None:
    import subprocess
    import sys

    for i in range(2):  # a finishes (and merges) while b is still writing
        _photo(tmp_path / "a" / f"a{i}.png", seed=i)
    for i in range(16):
        _photo(tmp_path / "b" / f"b{i}.png", seed=10 + i)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "fcnseg", *_predict(checkpoint, tmp_path / part, "--out", tmp_path / "out")],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for part in ("a", "b")
    ]
    codes = [r.wait(300) for r in runs]
    errs = [r.stderr.read() for r in runs]
    records = (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()
    assert sorted(codes) in ([0, 0], [0, 2]), errs
    if codes == [0, 0]:
        assert len(records) == 18  # both finished: every input in the manifest
    else:
        assert len(records) in (2, 16) and "another fcnseg predict" in errs[codes.index(2)]


def test_one_input_with_a_long_name_or_a_tiny_size_fails_alone(tmp_path, checkpoint, capsys) -> None:
    names = ["a" * 240 + ".png", "b" * 250 + ".png", "tiny.png", "ok.png"]  # all legal names
    for name in names:
        _photo(tmp_path / "in" / name, size=(1, 1) if name == "tiny.png" else (44, 36))
    code = main(_predict(checkpoint, tmp_path / "in", "--out", tmp_path / "out", "--scales", "0.5", "1"))
    captured = capsys.readouterr()
    no_traceback(captured.err, code)
    skipped = [line for line in captured.err.splitlines() if line.startswith("skipped:")]
    assert code == 1 and len(skipped) == 2, captured.err
    assert any("tiny.png" in s and "--scales 0.5" in s for s in skipped)
    assert any("b" * 250 in s and "File name too long" in s for s in skipped)  # its overlay's name: 262 bytes
    assert (tmp_path / "out" / ("a" * 240 + ".png")).is_file() and (tmp_path / "out" / "ok.png").is_file()
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.endswith(".tmp")]


def test_gif_and_ppm_are_read_and_other_files_named_once(tmp_path, checkpoint, capsys) -> None:
    _photo(tmp_path / "in" / "x.gif")
    _photo(tmp_path / "in" / "y.ppm")
    (tmp_path / "in" / "notes.txt").write_text("not a photo")
    assert main(_predict(checkpoint, tmp_path / "in", "--out", tmp_path / "out")) == 0
    err = capsys.readouterr().err
    assert (tmp_path / "out" / "x.png").is_file() and (tmp_path / "out" / "y.png").is_file()
    notes = [line for line in err.splitlines() if "not images by their suffix" in line]
    assert len(notes) == 1 and "notes.txt" in notes[0]


def test_a_newline_in_a_name_cannot_split_a_line(tmp_path, checkpoint, capsys) -> None:
    _photo(tmp_path / "in" / "ok.png")
    (tmp_path / "in" / "bad\nwrote 9 prediction(s) to x.png").write_bytes(b"not an image")
    code = main(_predict(checkpoint, tmp_path / "in", "--out", tmp_path / "out"))
    err = capsys.readouterr().err
    assert code == 1 and not [line for line in err.splitlines() if line.startswith("wrote")], err
    assert "bad\\nwrote 9 prediction(s)" in err


def test_classes_beyond_255_are_never_wrapped(tmp_path) -> None:
    from fcnseg.inference import Segmenter
    from fcnseg.inference.batch import BatchOptions, merge_manifest, predict_batch
    from fcnseg.inference.layout import collect_inputs, plan_jobs
    from fcnseg.io import read_label_png

    model = fcnseg.get_model("fcn8s_vgg16", num_classes=300, width=1 / 16)
    with torch.no_grad():
        model.score_fr.bias[299] = 1e4  # every pixel: class 299 (uint8 would make it 43)
    seg = Segmenter(model, device="cpu")
    _photo(tmp_path / "in" / "x.png")
    jobs = plan_jobs(*collect_inputs([tmp_path / "in"]), tmp_path / "out")
    summary = predict_batch(seg, jobs, tmp_path / "out", BatchOptions(), classes=seg.classes, progress=False)
    merge_manifest(tmp_path / "out")
    mask = read_label_png(tmp_path / "out" / "x.png")
    assert summary.done == 1 and mask.dtype == np.uint16 and set(np.unique(mask)) == {299}
    assert Image.open(tmp_path / "out" / "x.png").mode.startswith("I")  # 16-bit greyscale, not a palette
    (record,) = [json.loads(line) for line in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()]
    assert record["classes"]["labels"] == ["class_299"]
    assert seg.predict(np.zeros((20, 20, 3), np.uint8), tile=16, overlap=4).max() == 299  # tiles too


def test_a_fifo_where_the_manifest_goes_is_refused_not_waited_on(tmp_path, checkpoint, capsys) -> None:
    _photo(tmp_path / "in" / "x.png")
    out = tmp_path / "out"
    out.mkdir()
    os.mkfifo(out / ".manifest.rank0.jsonl")
    code = without_hanging(
        lambda: main(_predict(checkpoint, tmp_path / "in", "--out", out, "--overwrite")),
        [out / ".manifest.rank0.jsonl"],
    )
    _refused(capsys, code, "a FIFO")


def test_disk_full_and_read_only_name_the_file_written(tmp_path, checkpoint, capsys, monkeypatch) -> None:
    image = _photo(tmp_path / "x.png")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")  # as a write reports it: no file named

    monkeypatch.setattr("fcnseg.io.os.fsync", full)
    err = _refused(capsys, main(_predict(checkpoint, image, "--out", tmp_path / "o")), "(the disk is full)")
    assert str(tmp_path / "o" / "x_overlay.jpg") in err
    monkeypatch.undo()
    read_only_temp_files(monkeypatch)
    err = _refused(capsys, main(_predict(checkpoint, image, "--out", tmp_path / "o")), "(read-only file system)")
    assert f"{tmp_path / 'o' / 'x_overlay.jpg'}: Read-only" in err and ".tmp" not in err
    assert png  # the shared builders stay importable here
