"""Issue 30 through ``fcnseg data``: synth and import never write into a dataset that is not theirs, a full disk leaves
nothing half-written, JSON is strict. Each case failed before its fix."""

from __future__ import annotations

import errno
import json

import pytest

from fcnseg.cli.main import main
from tests.badinput import no_traceback


def _refused(capsys, code: int, message: str) -> str:
    err = capsys.readouterr().err
    no_traceback(err, code)
    assert code == 2 and message in err, err
    return err


def test_synth_into_an_existing_dataset_is_refused(tmp_path, capsys) -> None:
    lists = tmp_path / "voc" / "VOCdevkit" / "VOC2012" / "ImageSets" / "Segmentation"
    lists.mkdir(parents=True)
    (lists / "train.txt").write_text("2007_000032\n")  # the user's real split
    code = main(["data", "synth", "--out", str(tmp_path / "voc"), "--num-images", "3", "--size", "16"])
    _refused(capsys, code, "holds 1 file(s) this command did not write")
    assert (lists / "train.txt").read_text() == "2007_000032\n"
    folder = tmp_path / "mine"
    for split in ("train", "val"):
        (folder / split).mkdir(parents=True)
        (folder / split / "class_names.txt").write_text("background\nroof\n")
    code = main(["data", "synth", "--out", str(folder), "--layout", "folder", "--num-images", "3", "--size", "16"])
    _refused(capsys, code, "did not write")
    assert (folder / "train" / "class_names.txt").read_text() == "background\nroof\n"


def test_synth_again_needs_overwrite_and_leaves_no_stale_images(tmp_path, capsys) -> None:
    argv = ["data", "synth", "--out", str(tmp_path / "ds"), "--layout", "folder", "--size", "16"]
    assert main([*argv, "--num-images", "10"]) == 0
    assert len(list((tmp_path / "ds" / "train" / "images").iterdir())) == 8
    _refused(capsys, main([*argv, "--num-images", "5"]), "output of an earlier fcnseg dataset")
    assert main([*argv, "--num-images", "5", "--overwrite"]) == 0
    assert len(list((tmp_path / "ds" / "train" / "images").iterdir())) == 4  # not 8: the folder dataset reads all


def test_a_full_disk_during_synth_leaves_nothing_half_written(tmp_path, capsys, monkeypatch) -> None:
    import os

    calls = []
    real = os.fsync

    def fills_up(fd: int) -> None:
        calls.append(fd)
        if len(calls) > 7:  # the disk fills after 7 files
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd)

    monkeypatch.setattr("fcnseg.io.os.fsync", fills_up)
    code = main(["data", "synth", "--out", str(tmp_path / "ds"), "--num-images", "10", "--size", "16"])
    err = _refused(capsys, code, "No space left on device (the disk is full)")
    assert "synth_" in err and ".tmp" not in err  # the file being written, by name
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no images without split lists, no staging folder


def test_labelme_import_never_writes_into_its_sources(tmp_path, capsys) -> None:
    from tests.data.fixtures_tools import make_labelme

    make_labelme(tmp_path)
    (tmp_path / "link").symlink_to(tmp_path / "json")
    labels = str(tmp_path / "labels.txt")
    code = main(
        [
            "data",
            "import",
            "labelme",
            str(tmp_path / "json"),
            "--labels",
            labels,
            "--out",
            str(tmp_path / "link" / "ds"),
        ]
    )
    _refused(capsys, code, "inside the input folder")
    assert not (tmp_path / "json" / "ds").exists()


def test_bound_json_is_strict_json(tmp_path) -> None:
    argv = ["data", "bound", "-", "--dataset", "synthetic", "-o", "n=1", "-o", "size=16", "--strides", "32"]
    assert main([*argv, "--json", str(tmp_path / "b.json")]) == 0
    text = (tmp_path / "b.json").read_text()
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in the JSON"))
    assert None in data["bounds"]["32"]["iu"]  # classes absent from the image: undefined, written as null


def test_bound_json_is_not_written_over_the_users_file(tmp_path, capsys) -> None:
    (tmp_path / "notes.json").write_text('{"mine": true}')
    argv = ["data", "bound", "-", "--dataset", "synthetic", "-o", "n=1", "-o", "size=16", "--strides", "32"]
    _refused(capsys, main([*argv, "--json", str(tmp_path / "notes.json")]), "already exists; add --overwrite")
    assert (tmp_path / "notes.json").read_text() == '{"mine": true}'
