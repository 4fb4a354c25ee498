"""The bounded JSON reader every untrusted JSON file goes through: depth measured before parsing, finite numbers."""

from __future__ import annotations

import json
import os

import pytest

from fcnseg.errors import CheckpointError, DataError
from fcnseg.json_safe import MAX_JSON_DEPTH, json_depth, load_json, loads_json


@pytest.mark.parametrize(
    "text, depth",
    [
        (b"1", 0),
        (b"[]", 1),
        (b'{"a": [1, {"b": []}]}', 4),
        (b'["]]]]", "[[[[", "\\\\", "\\"[["]', 1),  # brackets and escaped quotes inside strings do not count
        (b'[["a\\\\"], "[["]', 2),
        (b'"unterminated [[[[', 0),
        (b"[" * 5000 + b"]" * 5000, 5000),
    ],
)
def test_depth_is_measured_without_parsing(text: bytes, depth: int) -> None:
    assert json_depth(text) == depth


def test_depth_agrees_with_the_parse_on_mixed_documents() -> None:
    def real(v: object) -> int:
        if isinstance(v, list):
            return 1 + max((real(x) for x in v), default=0)
        if isinstance(v, dict):
            return 1 + max((real(x) for x in v.values()), default=0)
        return 0

    doc = {"k[": ["}{", {"x": [[["\\]"]]], "y": '"['}], "z": {"": []}}
    text = json.dumps(doc).encode()
    assert json_depth(text) == real(doc) == 6


@pytest.mark.parametrize(
    "text, words",
    [
        ("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1), f"nested {MAX_JSON_DEPTH + 1} levels deep"),
        ("[" * 200000, "nested 200000 levels deep"),  # json would have raised RecursionError
        ('{"a": NaN}', "NaN is not a JSON number"),
        ("[Infinity]", "Infinity is not a JSON number"),
        ("[-Infinity]", "-Infinity is not a JSON number"),
        ("[1e400]", "number 1e400 is too large"),
        ("[" + "9" * 5000 + "]", "not valid JSON (ValueError"),
        ("{not json", "not a JSON file"),
    ],
)
def test_bad_json_is_one_line(text: str, words: str) -> None:
    with pytest.raises(DataError) as info:
        loads_json(text, "doc.json")
    assert str(info.value).startswith("doc.json: ") and words in str(info.value)
    assert "\n" not in str(info.value)


def test_error_class_and_files(tmp_path) -> None:
    (tmp_path / "bad.json").write_bytes(b'{"a": "\xff"}')
    with pytest.raises(CheckpointError, match=r"bad.json: not UTF-8 text \(byte 7"):
        load_json(tmp_path / "bad.json", error=CheckpointError)
    with pytest.raises(DataError, match=r"missing.json: annotation file not found"):
        load_json(tmp_path / "missing.json", "annotation file")
    with pytest.raises(DataError, match=r": a folder, not a labelme file"):
        load_json(tmp_path, "labelme file")
    os.mkfifo(tmp_path / "pipe.json")  # would block a plain open() forever
    with pytest.raises(DataError, match=r"pipe.json: a FIFO, not a JSON file"):
        load_json(tmp_path / "pipe.json")
    (tmp_path / "ok.json").write_text('{"a": [1, 2.5, "x"]}')
    assert load_json(tmp_path / "ok.json") == {"a": [1, 2.5, "x"]}
