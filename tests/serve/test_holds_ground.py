"""``fcnseg serve`` holds its ground: heads and bodies that never finish are cut off, open connections are capped
(the server answers with its file descriptors nearly gone), one image cannot take the model for long, the queue is
bounded (503 + Retry-After), and a model serve could not run is refused at start.

Attacks go over raw sockets to a real uvicorn server on 127.0.0.1 (in a thread, or the CLI in a child process)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="fcnseg[serve] is not installed")
import httpx
from fastapi.testclient import TestClient

import fcnseg
from fcnseg.cli.main import main
from fcnseg.inference import Segmenter
from fcnseg.serve import create_app
from fcnseg.serve.guard import ConnectionLimits
from fcnseg.serve.server import bind, make_server
from tests.badinput import no_traceback

FAST = ConnectionLimits(header_timeout=0.5, body_timeout=0.5, min_body_rate=2000, max_connections=64)


@pytest.fixture(scope="module")
def segmenter() -> Segmenter:
    return Segmenter(fcnseg.get_model("fcn32s_vgg16", num_classes=3, width=1 / 16), device="cpu")


def _png(h: int, w: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


@contextlib.contextmanager
def served(app, limits: ConnectionLimits = FAST) -> Iterator[int]:
    """The guarded server on a free loopback port, in a thread; yields the port."""
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = make_server(app, limits)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def _connect(port: int, send: bytes = b"") -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    if send:
        s.sendall(send)
    return s


def _closed_within(s: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """Whether the server closed ``s`` within ``seconds`` (reading whatever it wrote first)."""
    s.settimeout(0.1)
    got, deadline = b"", time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return True, got
        if not chunk:
            return True, got
        got += chunk
    return False, got


def _healthz(port: int) -> int:
    return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code


def test_heads_that_never_finish_are_closed_and_health_still_answers(segmenter) -> None:
    app = create_app(segmenter, seconds_per_pixel=1e-6)
    with served(app) as port:
        idle = [_connect(port) for _ in range(10)]
        partial = [_connect(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ") for _ in range(30)]
        assert _healthz(port) == 200  # during the attack
        started = time.monotonic()
        closed = [_closed_within(s, 5)[0] for s in idle + partial]
        assert all(closed), f"{closed.count(False)} of {len(closed)} connections still open after 5 s"
        assert time.monotonic() - started < 4
        assert _healthz(port) == 200
        for s in idle + partial:
            s.close()


def test_a_kept_alive_connection_trickling_its_next_head_is_closed(segmenter) -> None:
    app = create_app(segmenter, seconds_per_pixel=1e-6)
    with served(app) as port:
        s = _connect(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        first = s.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        closed = False
        for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\n":  # one byte every 0.1 s: 3.4 s for the head
            try:
                s.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            if _closed_within(s, 0.1)[0]:
                closed = True
                break
        assert closed and time.monotonic() - started < 2.5  # the head deadline, 0.5 s, not uvicorn's 5 s keep-alive
        s.close()


def test_a_trickled_body_gets_408_and_a_prompt_one_is_served(segmenter) -> None:
    app = create_app(segmenter, seconds_per_pixel=1e-6)
    with served(app) as port:
        head = (
            b"POST /api/segment HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: 100000\r\n\r\n"
        )
        part = (
            b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n'
        )
        s = _connect(port, head + part)
        started, answer = time.monotonic(), b""
        for _ in range(60):  # a byte every 0.05 s: 20 bytes/s, far under 2000
            try:
                s.sendall(b"y")
            except (BrokenPipeError, ConnectionResetError):
                break
            closed, got = _closed_within(s, 0.05)
            answer += got
            if closed:
                break
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"request body too slow" in answer and time.monotonic() - started < 2.5
        s.close()
        r = httpx.post(
            f"http://127.0.0.1:{port}/api/segment", files={"image": ("a.png", _png(40, 48), "image/png")}, timeout=30
        )
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"


def test_pixel_limit_follows_the_models_cost(segmenter) -> None:
    """At 1e-4 s a pixel and 1 s an image, 10000 pixels: a 120×100 upload is refused before decoding."""
    client = TestClient(create_app(segmenter, seconds_per_pixel=1e-4, max_seconds=1.0))
    assert client.get("/api/info").json()["max_pixels"] == 10_000
    r = client.post("/api/segment", files={"image": ("big.png", _png(100, 120), "image/png")})
    assert r.status_code == 413
    assert "exceeds the limit of 10000 pixels (about 1 s of this model here" in r.json()["detail"]
    assert client.post("/api/segment", files={"image": ("ok.png", _png(100, 90), "image/png")}).status_code == 200
    measured = TestClient(create_app(segmenter, max_seconds=1.0)).get("/api/info").json()["max_pixels"]
    assert 0 < measured <= 40_000_000


def _burst(port: int, n: int) -> list[httpx.Response]:
    async def go() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            files = [{"image": (f"{i}.png", _png(32, 32), "image/png")} for i in range(n)]
            return await asyncio.gather(*(client.post("/api/segment", files=f) for f in files))

    return asyncio.run(go())


def _slowed(segmenter: Segmenter, seconds: float) -> Segmenter:
    slow = Segmenter(segmenter.model, device="cpu")
    real = slow.predict
    slow.predict = lambda *a, **k: (time.sleep(seconds), real(*a, **k))[1]  # type: ignore[method-assign]
    return slow


def test_a_full_queue_answers_503_with_retry_after_at_once(segmenter) -> None:
    app = create_app(_slowed(segmenter, 0.6), queue_size=2, per_client=8, seconds_per_pixel=1e-3)
    with served(app) as port:
        started = time.monotonic()
        answers = _burst(port, 6)
        codes = sorted(r.status_code for r in answers)
        busy = [r for r in answers if r.status_code == 503]
        assert codes.count(200) >= 2 and len(busy) >= 3, codes
        assert all(int(r.headers["retry-after"]) >= 1 for r in busy)
        assert all("the model is busy" in r.json()["detail"] for r in busy)
        assert time.monotonic() - started < 6  # nobody waited behind the whole burst
        assert _healthz(port) == 200


def test_one_client_cannot_hold_the_queue(segmenter) -> None:
    app = create_app(_slowed(segmenter, 0.6), queue_size=8, per_client=1, seconds_per_pixel=1e-3)
    with served(app) as port:
        answers = _burst(port, 3)
        busy = [r for r in answers if r.status_code == 503]
        assert len(busy) >= 1 and "at most 1 per client" in busy[0].json()["detail"], [r.status_code for r in answers]


def test_a_model_serve_cannot_run_is_refused_at_start(segmenter) -> None:
    broken = Segmenter(segmenter.model, device="cpu")

    def fail(image, **kw):
        raise RuntimeError("kernel not implemented for this input")

    broken.predict = fail  # type: ignore[method-assign]
    with pytest.raises(fcnseg.errors.DataError, match=r"the model cannot run on a 1×1 RGB image: RuntimeError"):
        create_app(broken)
    with pytest.raises(fcnseg.errors.DataError, match=r"it could serve nothing; raise --max-seconds"):
        create_app(segmenter, seconds_per_pixel=0.01, max_seconds=10)


def test_serve_refuses_an_rgbd_checkpoint_and_a_port_in_use(tmp_path, capsys) -> None:
    from fcnseg.runtime.checkpoint import CheckpointInfo, model_kwargs, save_checkpoint

    model = fcnseg.get_model("fcn32s_vgg16", num_classes=3, width=1 / 16, in_channels=4)
    rgbd = save_checkpoint(tmp_path / "rgbd", model, CheckpointInfo(arch=model.arch, model_kwargs=model_kwargs(model)))
    code = main(["serve", "--checkpoint", str(rgbd), "--port", "0", "--device", "cpu"])
    err = capsys.readouterr().err
    no_traceback(err, code)
    assert code == 2 and "the model takes 4 input channels" in err, err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["serve", "--checkpoint", str(rgbd), "--port", str(port)])
        captured = capsys.readouterr()
    no_traceback(captured.err, code)
    assert code == 2 and f"127.0.0.1:{port}: cannot listen (another program is listening on it)" in captured.err
    assert "serving" not in captured.out
    code = main(["serve", "--checkpoint", str(rgbd), "--max-connections", "100000"])
    err = capsys.readouterr().err
    assert code == 2 and "--max-connections 100000: this process may open" in err, err


def _limited_fds() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (192, 192))


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="file descriptor limits as on Linux")
def test_idle_connections_cannot_exhaust_the_descriptors(tmp_path, checkpoint) -> None:
    """The CLI server with 192 file descriptors and --max-connections 64: 300 idle connections, /healthz answers."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(fcnseg.__file__).resolve().parents[1])}
    argv = [sys.executable, "-m", "fcnseg", "serve", "--checkpoint", str(checkpoint), "--port", str(port)]
    child = subprocess.Popen(
        [*argv, "--max-connections", "64", "--device", "cpu"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_limited_fds,
    )
    idle: list[socket.socket] = []
    try:
        deadline = time.monotonic() + 120
        while True:
            assert child.poll() is None, child.stderr.read()
            try:
                assert _healthz(port) == 200
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        for _ in range(300):
            idle.append(_connect(port))
        time.sleep(0.5)
        started = time.monotonic()
        assert _healthz(port) == 200  # the server evicted the oldest idle connections instead of running out
        assert time.monotonic() - started < 5
        assert child.poll() is None
        child.terminate()
        _, err = child.communicate(timeout=30)
        assert "Too many open files" not in err and "out of system resource" not in err, err[-2000:]
    finally:
        for s in idle:
            s.close()
        child.terminate()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            raise
