"""Lines of fcnseg's own bookkeeping files that someone else wrote: never a traceback, never a lost record."""

from __future__ import annotations

import json

import pytest

from fcnseg.errors import ConfigError
from fcnseg.inference.batch import merge_manifest
from fcnseg.writes import Ledger, claim_folder

DEEP = "[" * 100_000 + "]" * 100_000  # past the interpreter's recursion limit: json.loads raises RecursionError


def test_a_manifest_line_nested_past_the_recursion_limit_is_skipped(tmp_path) -> None:
    out = tmp_path / "out"
    ledger = claim_folder(out, kind="predict")
    ledger.claim([".manifest.rank0.jsonl"])
    good = {"input": "a.png", "mask": "a.png"}
    (out / ".manifest.rank0.jsonl").write_text(f"{DEEP}\n{json.dumps(good)}\n" + '{"input": ["x"]}\n')
    merged = merge_manifest(out, ledger=ledger)
    assert [json.loads(line) for line in merged.read_text().splitlines()] == [good]


def test_a_ledger_line_nested_past_the_recursion_limit_is_skipped(tmp_path) -> None:
    ledger = claim_folder(tmp_path / "out", kind="predict")
    ledger.claim(["a.png"])  # the maker is recorded with the first claim
    with open(ledger.path, "a") as f:
        f.write(DEEP + "\n")
    again = Ledger(tmp_path / "out")
    assert again.owner == "predict" and again.owns("a.png")


def test_a_model_card_s_metrics_file_is_json_read_safely(tmp_path) -> None:
    from fcnseg.weights.card import _metrics_file

    deep = tmp_path / "metrics.json"
    deep.write_text(DEEP)
    with pytest.raises(ConfigError, match=r"metrics.json: refused: JSON nested 100000 levels deep"):
        _metrics_file(deep)
    (tmp_path / "folder.json").mkdir()
    with pytest.raises(ConfigError, match=r"folder.json"):
        _metrics_file(tmp_path / "folder.json")
