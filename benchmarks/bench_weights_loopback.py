"""A full-size reference FCN-8s through the weights registry, served over loopback: download, check, convert, predict.

Usage:  python benchmarks/bench_weights_loopback.py [--image IMG] [--width 1] [--out docs/results/weights_loopback.txt]

Writes a ``.caffemodel`` in the layout of the release's ``fcn8s-heavy-pascal.caffemodel`` (``layer`` messages with
``shape`` blobs, random weights, bilinear upsampling kernels; 513 MB at width 1), serves it from ``127.0.0.1`` with
``http.server`` as ``FCNSEG_WEIGHTS_MIRROR``, and times ``fcnseg predict --model fcn8s_vgg16 --weights voc IMG`` in a
fresh ``FCNSEG_HOME``: the first run (download, SHA-1 check, conversion, cache, first prediction) and a second one
(the cache only). The registry's entry is given the file's own SHA-1, so the published-checksum path runs as it
would on the real file. The file is written by streaming the protobuf wire format (field numbers of Caffe's
``caffe.proto``, as ``tests/convert/test_caffe.py`` checks them), since building a 134M-float message in Python
would not fit a small machine.
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _blob(array: np.ndarray) -> bytes:
    """A ``BlobProto``: ``shape`` (7: ``BlobShape``, packed ``dim`` 1) and packed float ``data`` (5)."""
    shape = _field(1, b"".join(_varint(d) for d in array.shape))
    return _field(7, shape) + _field(5, np.ascontiguousarray(array, dtype="<f4").tobytes())


def write_caffemodel_stream(path: Path, layers: dict[str, list[np.ndarray]]) -> int:
    """Write ``NetParameter.layer`` (100) messages, each ``name`` (1), ``type`` (2) and ``blobs`` (7); returns bytes."""
    size = 0
    with open(path, "wb") as f:
        for name, blobs in layers.items():
            body = _field(1, name.encode()) + _field(2, b"Convolution") + b"".join(_field(7, _blob(b)) for b in blobs)
            record = _field(100, body)
            f.write(record)
            size += len(record)
    return size


def fcn8s_layers(width: float, seed: int = 0) -> dict[str, list[np.ndarray]]:
    """The blobs of the release's VOC FCN-8s at ``width``: random weights (std 0.01), the bilinear kernels kept."""
    import torch

    from fcnseg.models import get_model

    with torch.no_grad():
        model = get_model("fcn8s_vgg16", width=width)
    rng = np.random.default_rng(seed)
    layers: dict[str, list[np.ndarray]] = {}
    for key, t in model.state_dict().items():
        layer = key.rsplit(".", 1)[0]
        value = t.numpy() if layer.startswith("upscore") else rng.standard_normal(t.shape, dtype=np.float32) * 0.01
        layers.setdefault(layer, []).append(value)
    return layers


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


_CHILD = """
import atexit, resource, sys
atexit.register(lambda: print(f"peak_rss_kb={{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}}", file=sys.stderr))
from dataclasses import replace
from fcnseg.cli.main import main
from fcnseg.weights import get_weights, register_weights
entry = get_weights("fcn8s_vgg16.voc")
register_weights(replace(entry, width={width}, file=replace(entry.file, checksum="sha1:{sha1}")), replace=True)
raise SystemExit(main(sys.argv[1:]))
"""


def _run(args: list[str], env: dict[str, str], width: float, sha1: str) -> tuple[float, str, float]:
    """Wall seconds, stderr and peak resident memory (GiB) of ``fcnseg ARGS`` in a child process."""
    start = time.perf_counter()
    child = [sys.executable, "-c", _CHILD.format(width=width, sha1=sha1), *args]
    out = subprocess.run(child, env=env, capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"fcnseg failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return wall, out.stderr, _seconds(r"peak_rss_kb=(\d+)", out.stderr) / 2**20


def _seconds(pattern: str, text: str) -> float:
    found = re.search(pattern, text)
    return float(found.group(1)) if found else float("nan")


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = Path(__file__).resolve().parents[1]
    ap.add_argument("--image", default=str(here.parent / "shared" / "reference-data" / "demo" / "image.jpg"))
    ap.add_argument("--width", type=float, default=1.0, help="channel multiplier (1: the release's full size)")
    ap.add_argument("--out", help="also write the report here")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "mirror").mkdir()
        file = tmp / "mirror" / "fcn8s-heavy-pascal.caffemodel"
        t = time.perf_counter()
        size = write_caffemodel_stream(file, fcn8s_layers(args.width))
        written = time.perf_counter() - t
        sha1 = hashlib.sha1(file.read_bytes()).hexdigest()
        handler = lambda *a, **k: _Quiet(*a, directory=str(tmp / "mirror"), **k)  # noqa: E731
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        env = {
            **os.environ,
            "FCNSEG_HOME": str(tmp / "home"),
            "FCNSEG_WEIGHTS_MIRROR": f"http://127.0.0.1:{httpd.server_address[1]}/",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(here / "src"), os.environ.get("PYTHONPATH")])),
        }
        env.pop("FCNSEG_OFFLINE", None)
        predict = ["predict", "--model", "fcn8s_vgg16", "--weights", "voc", args.image]
        load = os.getloadavg()[0]
        first, log, first_peak = _run([*predict, "--out", str(tmp / "p1")], env, args.width, sha1)
        httpd.shutdown()
        offline = {**env, "FCNSEG_OFFLINE": "1"}
        second, _, second_peak = _run([*predict, "--out", str(tmp / "p2")], offline, args.width, sha1)
        cached = tmp / "home" / "weights" / "fcn8s_vgg16.voc" / "model.safetensors"
        row = {
            "file_mb": size / 2**20,
            "cached_mb": cached.stat().st_size / 2**20,
            "write_s": written,
            "download_s": _seconds(r"downloaded \S+ in ([\d.]+) s", log),
            "convert_s": _seconds(r"converted \S+ in ([\d.]+) s", log),
            "first_run_s": first,
            "cached_run_s": second,
            "first_peak_gib": first_peak,
            "cached_peak_gib": second_peak,
            "load_1min": load,
        }
    report = _report(row, args, argv)
    print(report)
    if args.out:
        Path(args.out).write_text(report)
    return row


def _report(row: dict[str, float], args: argparse.Namespace, argv: list[str] | None) -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    command = "python benchmarks/bench_weights_loopback.py " + " ".join(argv if argv is not None else sys.argv[1:])
    return (
        f"{command}\n"
        f"machine: {cpu}, {os.cpu_count()} cores, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; "
        f"python {platform.python_version()}; 1-minute load average {row['load_1min']:.1f} when it started (a shared "
        "machine: another experiment was running)\n"
        f"file: fcn8s-heavy-pascal layout, width {args.width:g}, {row['file_mb']:.1f} MiB (random weights), served by "
        f"http.server on 127.0.0.1 as FCNSEG_WEIGHTS_MIRROR; image {Path(args.image).name}\n"
        "first run  (fcnseg predict --model fcn8s_vgg16 --weights voc IMG, fresh FCNSEG_HOME): "
        f"{row['first_run_s']:.1f} s wall, peak RSS {row['first_peak_gib']:.2f} GiB\n"
        f"  download + SHA-1 check (pooch, loopback): {row['download_s']:.1f} s\n"
        f"  conversion + checkpoint write + record:    {row['convert_s']:.1f} s  "
        f"(cached checkpoint {row['cached_mb']:.1f} MiB)\n"
        f"  the rest (start-up, cache check, model load, first prediction): "
        f"{row['first_run_s'] - row['download_s'] - row['convert_s']:.1f} s\n"
        f"second run (FCNSEG_OFFLINE=1, server stopped: the cache only): {row['cached_run_s']:.1f} s wall, "
        f"peak RSS {row['cached_peak_gib']:.2f} GiB\n"
        f"(writing the test file took {row['write_s']:.1f} s, not counted)\n"
    )


if __name__ == "__main__":
    main()
