"""Bad inputs through ``fcnseg predict``: each failed input skipped with its own line, nothing partial written."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from fcnseg.cli.main import main
from fcnseg.io import read_image
from fcnseg.writes import LEDGER, LOCK
from tests.badinput import IMAGE_CASES, no_traceback, png


def test_image_matrix_through_predict(tmp_path, checkpoint, capsys) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name, (content, _) in IMAGE_CASES.items():
        (inputs / name).write_bytes(content)
    out = tmp_path / "out"
    code = main(["predict", "--checkpoint", str(checkpoint), str(inputs), "--out", str(out)])
    captured = capsys.readouterr()
    no_traceback(captured.err, code)
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
    assert not [p for p in out.iterdir() if p.name.startswith(".") and p.name not in (LEDGER, LOCK)]  # no temp


def test_fifo_named_like_an_image_does_not_block(tmp_path, checkpoint, capsys) -> None:
    import os
    import threading

    inputs = tmp_path / "in"
    inputs.mkdir()
    os.mkfifo(inputs / "pipe.png")
    (inputs / "ok.png").write_bytes(png(Image.new("RGB", (9, 7), (5, 5, 5))))
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
