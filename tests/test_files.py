"""The one reader of named files (``fcnseg.files``): regular files only, never blocking, bounded, errors naming the file.

Each reader the attack found hanging on a FIFO (config files, labelme ``--labels``, class lists, split lists, COCO
and labelme JSON, the records under FCNSEG_HOME) is tried here with a FIFO in its place.
"""

from __future__ import annotations

import os

import pytest

from fcnseg.errors import ConfigError, DataError
from tests.badinput import without_hanging


def test_only_regular_files_are_read(tmp_path) -> None:
    from fcnseg.files import read_text

    os.mkfifo(tmp_path / "pipe.txt")
    (tmp_path / "folder").mkdir()
    cases = {tmp_path / "pipe.txt": "a FIFO", tmp_path / "folder": "a folder", "/dev/null": "a device"}
    for path, kind in cases.items():
        with pytest.raises(DataError, match=f"{path}: {kind}, not a class list"):
            without_hanging(lambda p=path: read_text(p, what="class list"), [tmp_path / "pipe.txt"])
    with pytest.raises(DataError, match=r"missing.txt: class list not found"):
        read_text(tmp_path / "missing.txt", what="class list")


def test_size_limit_and_encoding(tmp_path) -> None:
    from fcnseg.files import open_regular, read_bytes, read_text

    (tmp_path / "big.txt").write_bytes(b"x" * 101)
    with pytest.raises(ConfigError, match=r"big.txt: 101 bytes; a config file is at most 100 bytes"):
        read_bytes(tmp_path / "big.txt", limit=100, what="config file", error=ConfigError)
    (tmp_path / "latin.txt").write_bytes("café".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin.txt: labels file is not UTF-8 text"):
        read_text(tmp_path / "latin.txt", what="labels file")
    (tmp_path / "ok.txt").write_text("ok\n")
    with open_regular(tmp_path / "ok.txt") as f:
        assert f.read() == b"ok\n"
        assert os.get_blocking(f.fileno())


@pytest.mark.parametrize(
    "reader, message",
    [
        ("config", "a FIFO, not a config file"),
        ("labelme labels", "a FIFO, not a labels file"),
        ("labelme json", "a FIFO, not a labelme file"),
        ("class names", "a FIFO, not a class list"),
        ("label map", "a FIFO, not a label map"),
        ("split list", "a FIFO, not a split list"),
        ("coco", "a FIFO, not an annotation file"),
    ],
)
def test_no_reader_blocks_on_a_fifo(tmp_path, reader, message) -> None:
    from fcnseg.config import load_config
    from fcnseg.data import coco, labelme
    from fcnseg.data._common import read_ids
    from fcnseg.data.labelmap import read_class_names, read_labelmap

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    call = {
        "config": lambda: load_config(fifo),
        "labelme labels": lambda: labelme.read_labelme_labels(fifo),
        "labelme json": lambda: labelme._read_json(fifo),
        "class names": lambda: read_class_names(fifo),
        "label map": lambda: read_labelmap(fifo),
        "split list": lambda: read_ids(fifo),
        "coco": lambda: coco._load_json(fifo),
    }[reader]
    with pytest.raises((ConfigError, DataError), match=message):
        without_hanging(call, [fifo])


def test_records_under_fcnseg_home_that_are_fifos_count_as_empty(tmp_path, fcnseg_home) -> None:
    from fcnseg.inference import costs, store

    fifo = fcnseg_home / "hashes.json"
    os.mkfifo(fifo)
    assert without_hanging(lambda: store._read_json(fifo), [fifo]) is None
    engines = fcnseg_home / "engines"
    engines.mkdir()
    os.mkfifo(engines / "costs-abc.json")
    assert without_hanging(lambda: costs._records("abc"), [engines / "costs-abc.json"]) == {}
    os.mkfifo(engines / "last_used")
    assert without_hanging(lambda: store._last_used(engines), [engines / "last_used"]) == 0.0
