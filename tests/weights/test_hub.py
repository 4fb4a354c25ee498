"""Sharing on the Hugging Face Hub: ``fcnseg export --format hub`` writes a folder with a model card the Hub reads,
and ``--weights hf://OWNER/NAME[@REVISION]`` loads such a repository through huggingface_hub, tested against a
loopback stand-in for the Hub's file-resolve endpoint (``HF_ENDPOINT``)."""

from __future__ import annotations

import hashlib
import http.server
import json
import re
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from fcnseg.cli.main import main
from fcnseg.errors import ConfigError, WeightsError
from fcnseg.weights.hub import parse_hub_name
from tests.weights.files import write_caffemodel

pytest.importorskip("huggingface_hub", reason="the hub extra: pip install 'fcnseg[hub]'")

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class _Hub(http.server.BaseHTTPRequestHandler):
    """``/{owner}/{name}/resolve/{revision}/{file}``: HEAD and GET, with the headers huggingface_hub reads."""

    server: http.server.ThreadingHTTPServer

    def log_message(self, *args) -> None:
        pass

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def do_GET(self) -> None:
        self._answer(body=True)

    def _answer(self, body: bool) -> None:
        match = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", self.path.split("?")[0])
        repos = self.server.repos  # type: ignore[attr-defined]
        self.server.requests.append((self.command, self.path))  # type: ignore[attr-defined]
        if not match or match.group(1) not in repos:
            self.send_response(404)
            self.send_header("X-Error-Code", "RepoNotFound")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        repo, revision, name = match.groups()
        files = repos[repo].get(revision)
        if files is None or name not in files:
            self.send_response(404)
            self.send_header("X-Error-Code", "RevisionNotFound" if files is None else "EntryNotFound")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = files[name].read_bytes()
        self.send_response(200)
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        if body:
            self.wfile.write(data)


@pytest.fixture
def hub(monkeypatch):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    httpd.repos, httpd.requests = {}, []  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{httpd.server_address[1]}")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _front_matter(readme: Path) -> dict:
    text = readme.read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_export_hub_folder_then_load_it_back_from_the_hub(
    tmp_path, mirror, scaled_registry, hub, monkeypatch, fcnseg_home
) -> None:
    write_caffemodel(mirror.root / "fcn8s-heavy-pascal.caffemodel", "voc-fcn8s")
    folder = tmp_path / "fcn8s-voc"
    argv = ["export", "--weights", "fcn8s_vgg16.voc", "--format", "hub", "--out", str(folder), "--repo", "me/fcn8s-voc"]
    assert main(argv) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "model.safetensors"]
    front = _front_matter(folder / "README.md")
    assert front["library_name"] == "fcnseg" and "semantic-segmentation" in front["tags"]
    assert front["datasets"] == ["voc"] and front["pipeline_tag"] == "image-segmentation"
    (result,) = front["model-index"][0]["results"]
    assert result["metrics"] == [{"type": "mean_iou", "name": "mean IU (%)", "value": 65.5}]
    assert result["dataset"]["split"] == "seg11valid" and "release README" in result["source"]["name"]
    card = (folder / "README.md").read_text()
    assert "hf://me/fcn8s-voc" in card and "BGR" in card and "20 tvmonitor" in card and "104.00699" in card

    from huggingface_hub import ModelCard

    hub_card = ModelCard.load(folder / "README.md")  # what the Hub itself reads
    (evaluation,) = hub_card.data.eval_results
    assert (evaluation.metric_type, evaluation.metric_value, evaluation.task_type) == (
        "mean_iou",
        65.5,
        "image-segmentation",
    )

    hub.repos["me/fcn8s-voc"] = {"main": {"model.safetensors": folder / "model.safetensors"}, COMMIT: {}}
    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 52, 3), dtype=np.uint8)).save(photo)
    assert main(["predict", "--weights", "fcn8s_vgg16.voc", str(photo), "--out", str(tmp_path / "registry")]) == 0
    assert main(["predict", "--weights", "hf://me/fcn8s-voc", str(photo), "--out", str(tmp_path / "hub")]) == 0
    assert (tmp_path / "hub" / "photo.png").read_bytes() == (tmp_path / "registry" / "photo.png").read_bytes()
    downloads = [r for r in hub.requests if r[0] == "GET"]
    assert len(downloads) == 1
    assert (fcnseg_home / "hub" / "models--me--fcn8s-voc").is_dir()  # cached under FCNSEG_HOME

    hub.shutdown()  # the Hub is gone: FCNSEG_OFFLINE=1 reads the cache
    monkeypatch.setenv("FCNSEG_OFFLINE", "1")
    assert (
        main(
            [
                "predict",
                "--model",
                "fcn8s_vgg16",
                "--weights",
                "hf://me/fcn8s-voc",
                str(photo),
                "--out",
                str(tmp_path / "off"),
            ]
        )
        == 0
    )
    assert (tmp_path / "off" / "photo.png").read_bytes() == (tmp_path / "hub" / "photo.png").read_bytes()


def test_hub_errors_are_one_line(tmp_path, hub, capsys, monkeypatch) -> None:
    photo = tmp_path / "photo.png"
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(photo)
    hub.repos["me/empty"] = {"main": {}}
    for ref, expected in (
        ("hf://me/missing", "no such repository"),
        ("hf://me/empty", "has no model.safetensors"),
        ("hf://me/empty@v2", "has no revision 'v2'"),
    ):
        assert main(["predict", "--weights", ref, str(photo), "--out", str(tmp_path / "p")]) == 2
        err = capsys.readouterr().err
        (line,) = [x for x in err.splitlines() if "error:" in x]
        assert line.startswith(f"fcnseg predict: error: {ref}: ") and expected in line, err
    monkeypatch.setenv("FCNSEG_OFFLINE", "1")
    assert main(["predict", "--weights", "hf://me/other", str(photo), "--out", str(tmp_path / "p")]) == 2
    assert "is not cached" in capsys.readouterr().err and not (tmp_path / "p").exists()


def test_hub_names() -> None:
    assert parse_hub_name("hf://me/fcn8s") == ("me/fcn8s", None)
    assert parse_hub_name("hf://me/fcn8s@v1.0") == ("me/fcn8s", "v1.0")
    with pytest.raises(WeightsError, match="expected hf://OWNER/NAME"):
        parse_hub_name("hf://fcn8s")


def test_the_hub_folder_refuses_to_overwrite_and_takes_measured_metrics(tmp_path, checkpoint) -> None:
    from fcnseg.weights import write_hub_folder

    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="exists and is not an empty folder"):
        write_hub_folder(checkpoint, taken)
    assert (taken / "notes.txt").read_text() == "mine"
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"pixel_accuracy": 0.9, "mean_iu": 0.5, "per_class": {}}))
    out = write_hub_folder(checkpoint, tmp_path / "new", name="me/tiny", metrics=metrics)
    values = {
        m["type"]: m["value"] for m in _front_matter(out / "README.md")["model-index"][0]["results"][0]["metrics"]
    }
    assert values == {"pixel_accuracy": 90.0, "mean_iou": 50.0}
    assert (out / "model.safetensors").read_bytes() == Path(checkpoint).read_bytes()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary folder left
