"""Issue 30 at the command line: a FIFO never hangs a command, a name never splits an error line, ``serve`` on a port
in use is one line before "serving". Each case failed before its fix."""

from __future__ import annotations

import os
import socket

from fcnseg.cli.main import main
from tests.badinput import no_traceback, without_hanging


def _refused(capsys, code: int, message: str) -> str:
    err = capsys.readouterr().err
    no_traceback(err, code)
    assert code == 2 and message in err, err
    return err


def test_fifos_given_as_config_or_labels_are_refused_at_once(tmp_path, capsys) -> None:
    os.mkfifo(tmp_path / "config.yaml")
    os.mkfifo(tmp_path / "labels.txt")
    (tmp_path / "json").mkdir()
    (tmp_path / "json" / "a.json").write_text('{"shapes": []}')
    code = without_hanging(lambda: main(["train", str(tmp_path / "config.yaml")]), [tmp_path / "config.yaml"])
    _refused(capsys, code, "config.yaml: a FIFO, not a config file")
    argv = ["data", "import", "labelme", str(tmp_path / "json"), "--labels", str(tmp_path / "labels.txt")]
    code = without_hanging(lambda: main([*argv, "--out", str(tmp_path / "ds")]), [tmp_path / "labels.txt"])
    _refused(capsys, code, "labels.txt: a FIFO, not a labels file")


def test_a_newline_in_a_name_stays_inside_its_error_line(tmp_path, capsys) -> None:
    name = tmp_path / "cfg\nfcnseg train: done, all good.yaml"
    code = main(["train", str(name)])
    err = _refused(capsys, code, "config file not found")
    assert "cfg\\nfcnseg train: done" in err and len(err.strip().splitlines()) == 1


def test_a_folder_with_several_problems_still_lists_them_one_a_line(tmp_path, capsys) -> None:
    for name in ("a\nb.jpg", "c.jpg"):
        (tmp_path / "images").mkdir(exist_ok=True)
        (tmp_path / "images" / name).write_bytes(b"x")
    (tmp_path / "masks").mkdir()
    code = main(["data", "check", str(tmp_path), "--dataset", "folder"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines[0].endswith("2 problems pairing images and masks:") and len(lines) == 3, err
    assert any("a\\nb.jpg" in line for line in lines[1:])


def test_serve_on_a_port_in_use_is_one_line_before_serving(checkpoint, capsys) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["serve", "--checkpoint", str(checkpoint), "--port", str(port), "--device", "cpu"])
        captured = capsys.readouterr()
    no_traceback(captured.err, code)
    assert code == 2 and f"127.0.0.1:{port}: cannot listen (another program is listening" in captured.err, captured
    assert "serving" not in captured.out
