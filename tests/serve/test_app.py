"""``fcnseg serve``: the API with FastAPI's test client, 50 concurrent requests on loopback, and the page
in a real headless Chromium (Debian's ``chromium`` + ``chromedriver``, driven by Selenium)."""

from __future__ import annotations

import asyncio
import base64
import io
import os
import shutil
import socket
import statistics
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

fastapi = pytest.importorskip("fastapi", reason="fcnseg[serve] is not installed")
import httpx  # noqa: E402
import uvicorn  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

import fcnseg  # noqa: E402
from fcnseg.cli.main import main  # noqa: E402
from fcnseg.inference import Segmenter  # noqa: E402
from fcnseg.preprocessing import IMAGENET  # noqa: E402
from fcnseg.runtime.checkpoint import CheckpointInfo, model_kwargs, save_checkpoint  # noqa: E402
from fcnseg.serve import create_app  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT.parent / "shared" / "reference-data" / "demo" / "image.jpg"
CLASSES = ["background", "square", "circle", "triangle", "star"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = fcnseg.get_model("fcn8s_resnet18", num_classes=len(CLASSES), width=1 / 16)
    with torch.no_grad():  # random score layers: several classes show up in every image
        for n in model.score_layer_names():
            getattr(model, n).weight.normal_(0, 3.0)
    info = CheckpointInfo(
        arch="fcn8s_resnet18", model_kwargs=model_kwargs(model), classes=CLASSES, preprocessing=IMAGENET.to_dict()
    )
    return save_checkpoint(tmp_path_factory.mktemp("serve") / "model", model, info)


@pytest.fixture(scope="module")
def segmenter(checkpoint) -> Segmenter:
    return Segmenter(checkpoint)


@pytest.fixture(scope="module")
def client(segmenter) -> TestClient:
    return TestClient(create_app(segmenter, max_upload_bytes=300_000, max_pixels=1_000_000))


def _png(h: int = 40, w: int = 56, seed: int = 0, solid: bool = False) -> bytes:
    buf = io.BytesIO()
    pixels = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(pixels * 0 if solid else pixels).save(buf, "PNG")
    return buf.getvalue()


def test_health_info_and_page(client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    info = client.get("/api/info").json()
    assert info["model"] == "fcn8s_resnet18" and info["classes"] == CLASSES and len(info["palette"]) == 5
    page = client.get("/")
    assert page.status_code == 200 and "Overlay opacity" in page.text and "/api/segment" in page.text


def test_segment_returns_a_palette_png_mask_of_the_image_size(client, segmenter) -> None:
    r = client.post("/api/segment", files={"image": ("a.png", _png(), "image/png")})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    mask = Image.open(io.BytesIO(r.content))
    assert mask.mode == "P" and mask.size == (56, 40)
    expected = segmenter.predict(np.asarray(Image.open(io.BytesIO(_png()))))
    assert np.array_equal(np.asarray(mask), expected)


def test_segment_json_has_class_shares_and_the_same_mask(client) -> None:
    r = client.post("/api/segment?format=json", files={"image": ("a.png", _png(), "image/png")})
    body = r.json()
    assert r.status_code == 200 and (body["width"], body["height"]) == (56, 40)
    assert sum(c["share"] for c in body["classes"]) == pytest.approx(1.0)
    assert {c["name"] for c in body["classes"]} <= set(CLASSES) and len(body["classes"]) >= 2
    mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["mask_png"]))))
    for c in body["classes"]:
        assert int((mask == c["index"]).sum()) == c["pixels"]
    png = client.post("/api/segment", files={"image": ("a.png", _png(), "image/png")}).content
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))), mask)


@pytest.mark.parametrize(
    "files, status, words",
    [
        ({"image": ("notes.png", b"this is not a picture", "image/png")}, 400, "notes.png: not an image"),
        ({"image": ("cut.png", _png()[:200], "image/png")}, 400, "cut.png: corrupt or truncated"),
        ({"image": ("empty.png", b"", "image/png")}, 400, "empty file"),
        ({"image": ("a.txt", _png(), "text/plain")}, 415, "text/plain is not an image type"),
        ({"image": ("big.png", os.urandom(400_000), "image/png")}, 413, "exceeds the limit of 300000 bytes"),
        (
            {"image": ("wide.png", _png(1000, 1200, solid=True), "image/png")},
            413,
            "exceeds the limit of 1000000 pixels",
        ),
        ({"file": ("a.png", _png(), "image/png")}, 422, "image"),
    ],
)
def test_bad_uploads_get_clear_4xx_errors(client, files, status, words) -> None:
    r = client.post("/api/segment", files=files)
    assert r.status_code == status, r.text
    assert words in str(r.json()["detail"])


def test_unknown_format_is_refused(client) -> None:
    r = client.post("/api/segment?format=gif", files={"image": ("a.png", _png(), "image/png")})
    assert r.status_code == 422


def test_serve_without_a_model_says_how_to_get_one(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "runs/demo/checkpoints/best.safetensors" in err and "fcnseg demo" in err


def test_serve_takes_a_registry_name_with_a_weights_file(tmp_path, monkeypatch) -> None:
    """--model NAME --weights FILE, as eval, predict and export take them."""
    import uvicorn
    from safetensors.torch import save_file

    import fcnseg.serve

    model = fcnseg.get_model("fcn8s_resnet18", num_classes=3)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "w.safetensors"))
    served = []
    real = fcnseg.serve.create_app
    monkeypatch.setattr(fcnseg.serve, "create_app", lambda seg, **kw: served.append(seg) or real(seg, **kw))
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: None)
    args = ["serve", "--model", "fcn8s_resnet18", "--weights", str(tmp_path / "w.safetensors"), "--device", "cpu"]
    assert main([*args, "--port", "0"]) == 0  # any free port: 8000 may be taken on a shared machine
    assert served[0].model.num_classes == 3 and len(served[0].classes) == 3


class _Server:
    """uvicorn on a free loopback port, in a thread; stopped on exit."""

    def __init__(self, app) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> _Server:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.mark.slow
def test_fifty_concurrent_requests_on_loopback_all_answered_correctly(segmenter) -> None:
    images = [_png(96, 128, seed=i) for i in range(50)]
    expected = [segmenter.predict(np.asarray(Image.open(io.BytesIO(b)))) for b in images]

    async def one(client: httpx.AsyncClient, i: int) -> tuple[float, np.ndarray]:
        t = time.perf_counter()
        r = await client.post("/api/segment", files={"image": (f"{i}.png", images[i], "image/png")})
        assert r.status_code == 200, r.text
        return time.perf_counter() - t, np.asarray(Image.open(io.BytesIO(r.content)))

    async def burst(url: str) -> list[tuple[float, np.ndarray]]:
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:
            return await asyncio.gather(*(one(client, i) for i in range(50)))

    with _Server(create_app(segmenter, queue_size=64, per_client=64)) as server:  # a burst the queue takes
        t0 = time.perf_counter()
        results = asyncio.run(burst(server.url))
        wall = time.perf_counter() - t0
    for (_, mask), exp in zip(results, expected, strict=True):
        assert np.array_equal(mask, exp)
    lat = sorted(r[0] for r in results)
    q = statistics.quantiles(lat, n=100, method="inclusive")
    print(
        f"\n50 concurrent requests (128×96 PNG, fcn8s_resnet18 at 1/16 width): wall {wall:.2f} s, "
        f"{50 / wall:.1f} req/s; latency p50 {q[49] * 1e3:.0f} ms, p90 {q[89] * 1e3:.0f} ms, "
        f"p99 {q[98] * 1e3:.0f} ms, max {lat[-1] * 1e3:.0f} ms"
    )


def _browser():
    """A headless Chromium driven by Selenium, or a skip that says what is missing."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not (chromium and driver_path):
        pytest.skip(
            "Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,820", "--disable-gpu"):
        options.add_argument(arg)
    service = webdriver.ChromeService(executable_path=driver_path)
    return webdriver.Chrome(options=options, service=service)


@pytest.mark.slow
@pytest.mark.skipif(not DEMO.is_file(), reason="shared/reference-data/demo/image.jpg not found")
def test_page_in_a_real_browser_shows_overlay_and_legend(segmenter, tmp_path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser = _browser()
    try:
        with _Server(create_app(segmenter)) as server:
            browser.get(server.url + "/")
            WebDriverWait(browser, 30).until(lambda b: "classes" in b.find_element(By.ID, "model").text)
            browser.find_element(By.ID, "file").send_keys(str(DEMO))
            WebDriverWait(browser, 60).until(lambda b: b.find_element(By.ID, "view").get_attribute("data-ready"))
            names = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#legend .name")]
            shares = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#legend .share")]
            size = browser.execute_script("const c = document.getElementById('view'); return [c.width, c.height];")
            link = browser.find_element(By.ID, "download")
            link_ok = link.is_displayed() and link.get_attribute("href").startswith("data:image/png;base64,")
            # the overlay changes with the opacity slider: the canvas differs between 0% and 100%
            probe = (
                "const c = document.getElementById('view'), s = document.getElementById('opacity');"
                "s.value = arguments[0]; s.dispatchEvent(new Event('input'));"
                "return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data"
                ".filter((_, i) => i % 997 === 0));"
            )
            plain, full = browser.execute_script(probe, 0), browser.execute_script(probe, 100)
            browser.execute_script(probe, 60)
            shot = tmp_path / "serve.png"
            browser.save_screenshot(str(shot))
    finally:
        browser.quit()
    assert size == [334, 500]  # the demo image is 334 wide, 500 tall
    assert names and set(names) <= set(CLASSES) and all(s.endswith("%") for s in shares)
    assert link_ok
    assert plain != full
    assert Image.open(shot).size[0] > 0


@pytest.mark.slow
def test_a_synthetic_model_s_page_segments_an_example_of_its_own_domain(tmp_path) -> None:
    """The page of a model trained on synthetic shapes says so and segments one of its example scenes in a click.

    ``docs/serve.png`` is this page: ``FCNSEG_WRITE_SCREENSHOT=1 FCNSEG_SCREENSHOT_CHECKPOINT=runs/demo/checkpoints/
    best.safetensors python -m pytest -m slow -k own_domain tests/serve/test_app.py`` (the demo's model; without
    the checkpoint variable, a random 1/16-width net with a synthetic record stands in).
    """
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from fcnseg.data import SyntheticShapes
    from fcnseg.inference import Segmenter

    given = os.environ.get("FCNSEG_SCREENSHOT_CHECKPOINT")
    browser = _browser()
    try:
        segmenter = Segmenter(given or _synthetic_checkpoint(tmp_path), device="cpu", engine="torch")
        with _Server(create_app(segmenter)) as server:
            browser.get(server.url + "/")
            WebDriverWait(browser, 30).until(lambda b: "synthetic" in b.find_element(By.ID, "about-data").text.lower())
            WebDriverWait(browser, 30).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#examples button"))
            browser.find_elements(By.CSS_SELECTOR, "#examples button")[3].click()  # large shapes: a clear picture
            WebDriverWait(browser, 60).until(lambda b: b.find_element(By.ID, "view").get_attribute("data-ready"))
            names = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#legend .name")]
            warning = browser.find_element(By.ID, "about-warning").text
            shot = tmp_path / "serve.png"
            browser.save_screenshot(str(shot))
    finally:
        browser.quit()
    assert names and set(names) <= set(SyntheticShapes.classes), names
    assert "meaningless" in warning
    if os.environ.get("FCNSEG_WRITE_SCREENSHOT"):  # refresh docs/serve.png
        shutil.copy(shot, ROOT / "docs" / "serve.png")


def _synthetic_checkpoint(tmp_path) -> Path:
    import torch

    import fcnseg
    from fcnseg.data import SyntheticShapes
    from fcnseg.runtime.checkpoint import CheckpointInfo, model_kwargs, save_checkpoint

    torch.manual_seed(0)
    classes = list(SyntheticShapes.classes)
    model = fcnseg.get_model("fcn8s_vgg16", num_classes=len(classes), width=1 / 16, pad100=False)
    info = CheckpointInfo(
        arch="fcn8s_vgg16",
        model_kwargs=model_kwargs(model),
        classes=classes,
        config={"data": {"name": "synthetic", "options": {"size": 128}}},
        step=1,
    )
    return save_checkpoint(tmp_path / "synthetic", model, info)


def test_head_requests_answer_on_page_and_health(client) -> None:
    assert client.head("/").status_code == 200
    assert client.head("/healthz").status_code == 200


def _drive(app, headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> tuple[int, dict, int]:
    """Run one HTTP request through an ASGI app by hand; returns (status, JSON body, chunks the app pulled)."""
    import json

    pulled = 0
    sent: list[dict] = []

    async def receive() -> dict:
        nonlocal pulled
        if pulled < len(chunks):
            pulled += 1
            return {"type": "http.request", "body": chunks[pulled - 1], "more_body": pulled < len(chunks)}
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/segment",
        "headers": headers,
        "query_string": b"",
        "http_version": "1.1",
        "scheme": "http",
        "server": ("t", 80),
        "client": ("c", 1),
        "root_path": "",
    }
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(body), pulled


def test_declared_oversized_body_is_refused_before_a_byte_is_read(segmenter) -> None:
    app = create_app(segmenter, max_upload_bytes=100_000)
    headers = [(b"content-type", b"multipart/form-data; boundary=x"), (b"content-length", b"300000000")]
    status, body, pulled = _drive(app, headers, [b"y" * 65536] * 8)
    assert (status, pulled) == (413, 0)
    assert "300000000 bytes exceeds the limit of 100000 bytes" in body["detail"]


def test_streamed_body_stops_being_read_at_the_limit(segmenter) -> None:
    app = create_app(segmenter, max_upload_bytes=100_000)
    chunks = [b'--x\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'] + [b"y" * 65536] * 100
    status, body, pulled = _drive(app, [(b"content-type", b"multipart/form-data; boundary=x")], chunks)
    assert status == 413 and "exceeds the limit of 100000 bytes" in body["detail"]
    assert pulled <= 4  # 100 kB + the 64 kB envelope allowance: the other ~6 MB are never read or spooled


def test_serve_refuses_more_classes_than_a_png_mask_holds() -> None:
    seg = Segmenter(fcnseg.get_model("fcn32s_vgg16", num_classes=300, width=1 / 16))
    with pytest.raises(fcnseg.errors.DataError, match="up to 256 classes"):
        create_app(seg)
