"""What the weights tests serve: scaled-down files in the publishers' real formats, and a loopback file server.

``Server`` serves a folder over ``http://127.0.0.1`` (``http.server`` in a thread) and counts the requests for each
file; a file can be made to answer 404, to send a truncated body, or to drop the connection once and then honour
``Range`` (a resumable server). ``scale_registry`` replaces the registry's entries by scaled-down copies (width 1/16,
no published checksum: the files differ from the release's) for tests and their child processes.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

import fcnseg
from fcnseg.convert.caffe import REFERENCE_NETS, schema
from fcnseg.weights.entries import CAFFE_TRUNKS, REFERENCE, TORCHFCN
from fcnseg.weights.table import register_weights

W = 1 / 16


def reference_model(net: str, width: float = W) -> Any:
    """The fcnseg model of reference net ``net`` (as ``convert_caffe`` builds it)."""
    ref = REFERENCE_NETS[net]
    kwargs: dict[str, Any] = {"width": width}
    if ref.heads:
        kwargs["heads"] = ref.heads
    else:
        kwargs["num_classes"] = len(ref.classes)
    if ref.streams:
        kwargs["streams"] = ref.streams
    return fcnseg.models.get_model(ref.arch, **kwargs)


def write_caffemodel(path: Path, net: str, width: float = W) -> Path:
    """A ``.caffemodel`` of reference net ``net`` (current ``layer`` layout, seeded random weights, bilinear
    upsampling), written as ``tests/convert/test_caffe.py`` writes them."""
    from tests.convert.test_caffe import _layers_of, _write_new_layout

    model = reference_model(net, width)
    extra = {"scale_pool4": 0.01, "scale_pool3": 0.0001} if "atonce" in net else None
    _write_new_layout(path, _layers_of(model), extra)
    return path


def write_vgg16_ilsvrc(path: Path, width: float = W) -> dict[str, torch.Tensor]:
    """The ILSVRC VGG16 classifier in Caffe's legacy ``layers`` layout (fc8 included); returns its trunk tensors."""
    target = fcnseg.models.get_model("fcn32s_vgg16", width=width)
    net = schema()["NetParameter"](name="VGG_ILSVRC_16_layers")
    g = torch.Generator().manual_seed(1)
    trunk = {k: v for k, v in target.state_dict().items() if not k.startswith(("score", "upscore"))}
    fc7 = trunk["fc7.weight"].shape[0]
    expected = {}
    for key, like in [*trunk.items(), ("fc8.weight", torch.zeros(1000, fc7)), ("fc8.bias", torch.zeros(1000))]:
        name, param = key.rsplit(".", 1)
        if param == "weight":
            layer = net.layers.add(name=name, type=4 if name.startswith("conv") else 14)
        value = torch.randn(like.shape, generator=g)
        expected[key] = value
        blob = layer.blobs.add()
        if param == "bias":
            blob.num, blob.channels, blob.height, blob.width = 1, 1, 1, like.numel()
        elif name.startswith("fc"):
            blob.num, blob.channels, blob.height, blob.width = 1, 1, like.shape[0], like[0].numel()
        else:
            blob.num, blob.channels, blob.height, blob.width = tuple(like.shape)
        blob.data.extend(value.ravel().tolist())
    path.write_bytes(net.SerializeToString())
    return {k: v for k, v in expected.items() if not k.startswith("fc8")}


def scaled(entry: Any, width: float = W, checksum: str | None = None) -> Any:
    """``entry`` at ``width`` with ``checksum`` (none by default: a scaled file is not the publisher's)."""
    return replace(entry, width=width, file=replace(entry.file, checksum=checksum))


def scale_registry(width: float = W, checksums: dict[str, str] | None = None) -> None:
    """Replace the release's, torchfcn's and the Caffe trunks' entries by scaled-down copies."""
    for entry in (*REFERENCE, *TORCHFCN, *CAFFE_TRUNKS):
        register_weights(scaled(entry, width, (checksums or {}).get(entry.file.name)), replace=True)


def restore_registry() -> None:
    for entry in (*REFERENCE, *TORCHFCN, *CAFFE_TRUNKS):
        register_weights(entry, replace=True)


class _Handler(http.server.SimpleHTTPRequestHandler):
    server: Any

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        name = self.path.lstrip("/").split("?")[0]
        state = self.server.state
        with state["lock"]:
            state["counts"][name] += 1
            first = state["counts"][name] == 1
        state["gate"].wait(timeout=300)  # held by the test (``Server.hold``) until it releases it
        mode = state["modes"].get(name)
        path = Path(self.directory) / name
        if mode == "404" or not path.is_file():
            self.send_error(404, "Not Found")
            return
        data = path.read_bytes()
        start = 0
        if mode == "resumable" and self.headers.get("Range"):
            start = int(self.headers["Range"].split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
            self.send_header("Accept-Ranges", "bytes" if mode == "resumable" else "none")
        self.send_header("Content-Length", str(len(data) - start))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        body = data[start:]
        if mode == "truncate" or (mode == "resumable" and first):
            body = body[: len(body) // 2]  # then the connection closes: a truncated body
        for i in range(0, len(body), 1 << 16):
            self.wfile.write(body[i : i + (1 << 16)])
            if state["delay"]:
                time.sleep(state["delay"])
        self.wfile.flush()
        self.close_connection = True


class Server:
    """A folder served over loopback; ``url`` is its base address (``FCNSEG_WEIGHTS_MIRROR``)."""

    def __init__(self, root: Path, delay: float = 0.0) -> None:
        self.root = root
        handler = lambda *a, **k: _Handler(*a, directory=str(root), **k)  # noqa: E731
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        gate = threading.Event()
        gate.set()
        self.httpd.state = {"counts": Counter(), "modes": {}, "lock": threading.Lock(), "delay": delay, "gate": gate}
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    @property
    def counts(self) -> Counter:
        return self.httpd.state["counts"]

    @property
    def modes(self) -> dict[str, str]:
        return self.httpd.state["modes"]

    def hold(self) -> None:
        """Keep every request waiting (after it is counted) until :meth:`release`."""
        self.httpd.state["gate"].clear()

    def release(self) -> None:
        self.httpd.state["gate"].set()

    def wait_for_request(self, name: str, timeout: float) -> bool:
        """Wait until ``name`` has been requested; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.counts[name]:
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        """Stop serving (idempotent): later requests are refused."""
        if self.thread.is_alive():
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join()
