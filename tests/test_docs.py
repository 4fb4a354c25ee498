"""The user guides in ``docs/`` are run, command by command, exactly as written.

Each page's fenced ``yaml file=NAME`` blocks are written to NAME; each ``bash`` block's lines are run in
order in one working folder with ``bash -e`` (a ``bash nodes=2`` block runs on two "machines" at once,
with ``NODE_RANK`` 0 and 1 and a loopback rendezvous). What a user would download first is made here in
the real format, and only there does the test touch a command: the scaled-down reference ``.caffemodel``
(1/16 width, since the real one is 500 MB) needs the converter's hidden ``--width`` flag.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fcnseg.data import SyntheticShapes
from fcnseg.runtime.checkpoint import read_info

DOCS = Path(__file__).resolve().parents[1] / "docs"
REFERENCE_DATA = Path(__file__).resolve().parents[2] / "shared" / "reference-data"
FENCE = re.compile(r"^```(\S+)([^\n]*)\n(.*?)^```", re.S | re.M)


def blocks(page: str) -> list[tuple[str, dict[str, str], str]]:
    """(language, attributes, body) of every fenced block of ``docs/page``."""
    out = []
    for lang, attrs, body in FENCE.findall((DOCS / page).read_text()):
        out.append((lang, dict(a.split("=", 1) for a in attrs.split() if "=" in a), body))
    return out


def _env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return {**os.environ, "PATH": path, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **extra}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_page(page: str, cwd: Path, edit=lambda line: line) -> list[str]:
    """Run every block of ``page`` in ``cwd``; returns the commands run."""
    ran = []
    for lang, attrs, body in blocks(page):
        if "file" in attrs:
            (cwd / attrs["file"]).write_text(body)
            continue
        if lang != "bash":
            continue
        for line in body.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            cmd = edit(line)
            ran.append(cmd)
            nodes = int(attrs.get("nodes", "1"))
            port = str(_port())
            procs = [
                subprocess.Popen(
                    ["bash", "-ec", cmd],
                    cwd=cwd,
                    env=_env(NODE_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=port),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
                for rank in range(nodes)
            ]
            for p in procs:
                out, _ = p.communicate(timeout=600)
                assert p.returncode == 0, f"{page}: `{cmd}` failed ({p.returncode}):\n{out[-3000:]}"
    return ran


@pytest.mark.slow
def test_train_on_your_own_data(tmp_path) -> None:
    ran = run_page("train-your-own-data.md", tmp_path)
    assert [c.split()[1] for c in ran] == [
        "data",
        "mydata/train/class_names.txt",
        "data",
        "data",
        "train",
        "eval",
        "predict",
    ]
    run = tmp_path / "runs" / "mydata"
    info = read_info(run / "checkpoints" / "best.safetensors")
    assert info.classes == list(SyntheticShapes.classes) and info.step > 0  # the names data synth wrote, in order
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    assert metrics["mean_iu"] >= 0.15, metrics  # the page promises about 0.20 (measured 0.198)
    assert list(metrics["per_class"]) == list(SyntheticShapes.classes)
    assert (tmp_path / "predictions" / "val_000000.png").is_file()


def _reference_downloads(cwd: Path) -> None:
    """What the page has the user download: the reference .caffemodel, VOC2011, the demo image."""
    import fcnseg
    from fcnseg.data._common import bundled_split
    from fcnseg.io import write_palette_png
    from tests.convert.test_caffe import _layers_of, _write_new_layout

    _write_new_layout(cwd / "fcn8s-heavy-pascal.caffemodel", _layers_of(fcnseg.get_model("fcn8s_vgg16", width=1 / 16)))
    (cwd / "demo").mkdir()
    shutil.copy(REFERENCE_DATA / "demo" / "image.jpg", cwd / "demo" / "image.jpg")
    base = cwd / "VOC" / "VOCdevkit" / "VOC2011"
    (base / "JPEGImages").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for sid in bundled_split("seg11valid"):  # all 736 ids, as tiny images
        Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(base / "JPEGImages" / f"{sid}.jpg")
        mask = rng.integers(0, 21, (24, 32)).astype(np.uint8)
        mask[0] = 255
        write_palette_png(base / "SegmentationClass" / f"{sid}.png", mask, fcnseg.data.voc_palette())


@pytest.mark.slow
@pytest.mark.skipif(not (REFERENCE_DATA / "demo" / "image.jpg").is_file(), reason="shared/reference-data not found")
def test_use_the_reference_weights(tmp_path, monkeypatch) -> None:
    """The release's site is a loopback mirror serving the scaled-down file; the commands run with the registry scaled
    to that width (``tests/weights/scaled_cli.py``), and the hand conversion with the converter's hidden --width."""
    from tests.weights.files import Server

    _reference_downloads(tmp_path)
    (tmp_path / "mirror").mkdir()
    shutil.copy(tmp_path / "fcn8s-heavy-pascal.caffemodel", tmp_path / "mirror")
    server = Server(tmp_path / "mirror")
    monkeypatch.setenv("FCNSEG_WEIGHTS_MIRROR", server.url)
    monkeypatch.delenv("FCNSEG_OFFLINE", raising=False)
    root = str(Path(__file__).resolve().parents[1])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])]))
    cli = f"{sys.executable} -m tests.weights.scaled_cli "

    def scaled(line: str) -> str:
        line = line + " --width 0.0625" if line.startswith("fcnseg convert caffe") else line
        return re.sub(r"(^|\s)fcnseg ", lambda m: m.group(1) + cli, line, count=1)

    try:
        ran = run_page("reference-weights.md", tmp_path, scaled)
    finally:
        server.stop()
    words = [c.split(cli, 1)[1].split()[0] for c in ran]
    assert words == ["predict", "weights", "weights", "eval", "predict", "export", "convert", "info"]
    assert server.counts["fcn8s-heavy-pascal.caffemodel"] == 1  # the offline run and the rest read the cache
    metrics = json.loads((tmp_path / "eval-seg11valid" / "metrics.json").read_text())
    assert 0 <= metrics["mean_iu"] <= 1 and (tmp_path / "demo-out" / "image.png").is_file()
    assert (tmp_path / "demo-out-offline" / "image.png").read_bytes() == (
        tmp_path / "demo-out" / "image.png"
    ).read_bytes()
    assert sorted(p.name for p in (tmp_path / "fcn8s-voc-hub").iterdir()) == ["README.md", "model.safetensors"]


@pytest.mark.slow
def test_scale_out(tmp_path) -> None:
    ran = run_page("scale-out.md", tmp_path)
    assert sum("torchrun" in c for c in ran) == 4
    masks = sorted(p.relative_to(tmp_path / "archive-masks") for p in (tmp_path / "archive-masks").rglob("*.png"))
    assert len(masks) == 24 and {m.parts[0] for m in masks} == {"train", "val"}  # mirrors archive/{train,val}
    ray_masks = sorted(
        p.relative_to(tmp_path / "archive-masks-ray") for p in (tmp_path / "archive-masks-ray").rglob("*.png")
    )
    assert ray_masks == masks
    for m in masks:
        assert (tmp_path / "archive-masks" / m).read_bytes() == (tmp_path / "archive-masks-ray" / m).read_bytes()
    for run in ("one-node", "two-nodes"):
        assert read_info(tmp_path / "runs" / run / "checkpoints" / "last.safetensors").step in (6, 8)
    assert read_info(tmp_path / "runs" / "one-node" / "checkpoints" / "last.safetensors").step == 8
    assert (tmp_path / "runs" / "one-node" / "eval" / "metrics.json").is_file()


def test_every_guide_has_commands_and_is_tested() -> None:
    for page in ("train-your-own-data.md", "reference-weights.md", "scale-out.md"):
        assert any(lang == "bash" for lang, _, _ in blocks(page)), page


def _section(page: str, heading: str) -> str:
    """The text of ``docs/page`` from the ``## heading`` line to the next ``## `` heading."""
    text = (DOCS / page).read_text()
    start = text.index(f"\n## {heading}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def test_annotation_tool_exports(tmp_path, monkeypatch, capsys) -> None:
    """Section 6 of the own-data guide, run on a labelme folder, a CVAT and a COCO export written as those tools do.

    Its commands are all ``fcnseg …`` lines, so they run in this process (``main(argv)``): seconds, not a
    Python start per command.
    """
    import shlex

    from fcnseg.cli.main import main
    from tests.data.fixtures_tools import make_coco, make_cvat, make_labelme

    pytest.importorskip("pycocotools", reason="the coco extra: pip install 'fcnseg[coco]'")
    make_labelme(tmp_path / "labelme")
    for stem, split in (("a", "train"), ("b", "val")):
        (tmp_path / "labelme" / split).mkdir()
        (tmp_path / "labelme" / "json" / f"{stem}.json").rename(tmp_path / "labelme" / split / f"{stem}.json")
    make_cvat(tmp_path / "cvat-export")
    make_coco(tmp_path / "coco-export", split="default")
    (tmp_path / "coco-export" / "default").rename(tmp_path / "coco-export" / "images")  # CVAT's COCO 1.0 layout
    monkeypatch.chdir(tmp_path)
    outputs = []
    for lang, _, body in FENCE.findall(_section("train-your-own-data.md", "6. Exports of annotation tools")):
        assert lang == "sh", "section 6's commands are sh blocks, run here rather than by the walkthrough test"
        for cmd in (line for line in body.splitlines() if line.strip() and not line.lstrip().startswith("#")):
            argv = shlex.split(cmd)
            assert argv[0] == "fcnseg", cmd
            code = main(argv[1:])
            out, err = capsys.readouterr()
            assert code == 0, f"`{cmd}` failed ({code}):\n{out[-2000:]}{err[-2000:]}"
            outputs.append((cmd, out))
    assert [c.split()[1:3] for c, _ in outputs] == [["data", "import"]] * 2 + [["data", "check"]] * 4
    assert (tmp_path / "mylabelme" / "train" / "class_names.txt").read_text().split() == ["_background_", "cat", "dog"]
    labelme_check, cvat_check, coco_check, coco_dropped = (out for _, out in outputs[2:])
    assert "1/1 samples readable, 0 problem(s)" in labelme_check and "  2 dog" in labelme_check
    assert "2/2 samples readable, 0 problem(s)" in cvat_check and "  1 cat" in cvat_check
    assert "3/3 samples readable, 0 problem(s)" in coco_check and "  3 toothbrush" in coco_check
    assert "2/2 samples readable" in coco_dropped
