"""The serve page says what the loaded model knows, and offers examples from its own (synthetic) domain."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("fastapi", reason="fcnseg[serve] is not installed")
from fastapi.testclient import TestClient

import fcnseg
from fcnseg.data import SyntheticShapes
from fcnseg.inference import Segmenter
from fcnseg.preprocessing import IMAGENET
from fcnseg.runtime.checkpoint import CheckpointInfo, model_kwargs, save_checkpoint
from fcnseg.serve import create_app


def _client(tmp_path, data: dict) -> TestClient:
    torch.manual_seed(0)
    classes = list(SyntheticShapes.classes)
    model = fcnseg.get_model("fcn8s_resnet18", num_classes=len(classes), width=1 / 16)
    info = CheckpointInfo(
        arch="fcn8s_resnet18",
        model_kwargs=model_kwargs(model),
        classes=classes,
        preprocessing=IMAGENET.to_dict(),
        config={"data": data},
        step=7,
    )
    return TestClient(create_app(Segmenter(save_checkpoint(tmp_path / "m", model, info))))


def test_info_says_what_a_synthetic_model_knows_and_examples_come_from_its_domain(tmp_path) -> None:
    client = _client(tmp_path, {"name": "synthetic", "options": {"size": 64}})
    info = client.get("/api/info").json()
    card = info["trained_on"]
    assert info["classes"] == list(SyntheticShapes.classes)
    assert card["dataset"] == "synthetic" and "no photographs" in card["description"] and card["image_size"] == 64
    assert card["examples"] and card["step"] == 7
    png = client.get(card["examples"][0])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    image = np.asarray(Image.open(io.BytesIO(png.content)))
    assert image.shape == (64, 64, 3)
    assert (image == SyntheticShapes(4, 64, "test", seed=1).generate(0)[0]).all()  # a held-out scene
    seg = client.post("/api/segment?format=json", files={"image": ("e.png", png.content, "image/png")})
    assert seg.status_code == 200 and seg.json()["width"] == 64
    assert client.get("/api/example/99.png").status_code == 404


def test_other_models_offer_no_examples_and_the_page_explains(tmp_path) -> None:
    client = _client(tmp_path, {"name": "voc"})
    card = client.get("/api/info").json()["trained_on"]
    assert card["examples"] == [] and "PASCAL VOC" in card["description"]
    assert client.get("/api/example/0.png").status_code == 404
    page = client.get("/").text
    assert "What this model knows" in page and "Try an example" in page and "trained_on" in page
