"""Bad-input builders shared by the tests next to each module: forged images and checkpoints, the one-line check."""

from __future__ import annotations

import io
import os
import resource
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb() -> bytes:
    """A valid PNG header declaring 50000×50000 pixels (2.5 G) in a few bytes."""
    ihdr = struct.pack(">IIBBBBB", 50000, 50000, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b""))
        + png_chunk(b"IEND", b"")
    )


def jpeg(rgb=(10, 200, 30), size=(6, 4), mode="RGB", exif_orientation=None) -> bytes:
    img = Image.new(mode, size, rgb if mode == "RGB" else (0, 0, 0, 0))
    buf = io.BytesIO()
    kwargs = {}
    if exif_orientation:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        kwargs["exif"] = exif
    img.save(buf, format="JPEG", quality=95, **kwargs)
    return buf.getvalue()


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def palette_image() -> Image.Image:
    img = Image.new("P", (7, 5), 3)
    img.putpalette([0, 0, 0] * 3 + [10, 20, 30] + [0, 0, 0] * 252)
    return img


GOOD_JPEG = jpeg()


IMAGE_CASES = {
    "truncated.jpg": (GOOD_JPEG[: len(GOOD_JPEG) // 2], "truncated"),
    "corrupt.png": (png(Image.new("RGB", (5, 5)))[:30] + b"\x00" * 40, "not an image"),
    "zero-byte.jpg": (b"", "not an image"),
    "text.jpg": (b"just some text, not a photo\n", "not an image"),
    "bomb.png": (bomb(), "too large"),
    "grey.png": (png(Image.new("L", (7, 5), 100)), "ok"),
    "rgba.png": (png(Image.new("RGBA", (7, 5), (200, 100, 50, 255))), "ok"),
    "16bit.png": (png(Image.fromarray(np.full((5, 7), 65535, np.uint16))), "ok"),
    "cmyk.jpg": (jpeg(mode="CMYK", size=(7, 5)), "ok"),
    "palette.png": (png(palette_image()), "ok"),
    "exif-rotated.jpg": (jpeg(size=(6, 4), exif_orientation=6), "ok"),
    "one-pixel.png": (png(Image.new("RGB", (1, 1), (1, 2, 3))), "ok"),
    "ünïcødé-名前.png": (png(Image.new("RGB", (9, 3), (9, 9, 9))), "ok"),
}


def no_traceback(err: str, code: int) -> None:
    assert "Traceback" not in err
    if code == 2:
        assert len(err.strip().splitlines()) == 1, err


def png_with(width: int, height: int, *, extra: bytes = b"", depth: int = 8, colour: int = 0) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + extra
        + png_chunk(b"IDAT", zlib.compress(b""))
        + png_chunk(b"IEND", b"")
    )


def png16(values: np.ndarray, sbit: int | None = None) -> bytes:
    raw = png(Image.fromarray(values.astype(np.uint16)))
    if sbit is None:
        return raw
    cut = raw.index(b"IDAT") - 4  # insert sBIT before the first IDAT chunk
    return raw[:cut] + png_chunk(b"sBIT", bytes([sbit])) + raw[cut:]


def forge(path: Path, checkpoint: Path, **changes) -> Path:
    """A copy of ``checkpoint`` whose fcnseg metadata has ``changes`` (dotted keys reach into model_kwargs)."""
    import json

    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(checkpoint), framework="pt") as f:
        meta = json.loads(f.metadata()["fcnseg"])
    for key, value in changes.items():
        target = meta
        *parents, leaf = key.split("__")
        for p in parents:
            target = target[p]
        target[leaf] = value
    tensors = load_file(str(checkpoint))
    save_file(tensors, str(path), metadata={"fcnseg": json.dumps(meta)})
    return path


def fuzz_bytes(rng: np.random.Generator, seeds: list[bytes]) -> bytes:
    base = bytearray(seeds[int(rng.integers(len(seeds)))])
    for _ in range(int(rng.integers(1, 8))):
        if base and rng.random() < 0.7:
            base[int(rng.integers(len(base)))] = int(rng.integers(256))
        else:
            cut = int(rng.integers(len(base) + 1))
            base = base[:cut] + bytes(rng.integers(0, 256, int(rng.integers(0, 64)), dtype=np.uint8))
    return bytes(base)


#: the address-space limit of tests that could allocate without bound: the CUDA build of torch needs more than
#: 3 GiB of address space just to import; every bomb these tests try asks for far more than this (tens of GiB)
AS_LIMIT = 6 * 2**30


def limit_address_space(limit: int = AS_LIMIT) -> None:
    """``preexec_fn`` of a child process: ``RLIMIT_AS`` = ``limit`` (a runaway allocation fails, not the machine)."""
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def run_limited(code: str, *args: str, timeout: float = 600, limit: int = AS_LIMIT) -> subprocess.CompletedProcess:
    """``python -c code ARGS…`` in a child under an address-space limit, importing this tree's fcnseg and tests."""
    import fcnseg

    src = Path(fcnseg.__file__).resolve().parents[1]
    repo = Path(__file__).resolve().parents[1]
    path = os.pathsep.join([str(src), str(repo), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        preexec_fn=lambda: limit_address_space(limit),
    )


CLI_CHILD = """
import contextlib, io, json, sys
from fcnseg.cli.main import main
results = []
for argv in json.loads(open(sys.argv[1]).read()):
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
        results.append({"code": code, "out": out.getvalue(), "err": err.getvalue()})
    except BaseException as e:
        results.append({"code": None, "out": out.getvalue(), "err": f"BUG {type(e).__name__}: {e}"})
print(json.dumps(results))
"""


def run_cli_cases(folder: Path, cases: list[list[str]], timeout: float = 900) -> list[dict]:
    """Each argv of ``cases`` through ``fcnseg.cli.main`` in one child under :data:`AS_LIMIT`; per case its exit
    code (``None``: an exception escaped), stdout and stderr."""
    import json

    listing = folder / "cli-cases.json"
    listing.write_text(json.dumps(cases))
    proc = run_limited(CLI_CHILD, str(listing), timeout=timeout)
    assert proc.returncode == 0, (
        f"the child died (rc {proc.returncode}) under RLIMIT_AS={AS_LIMIT}: {proc.stderr[-2000:]}"
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def without_hanging(fn, fifos=(), timeout: float = 60.0):
    """``fn()`` in a thread; if it is still running after ``timeout`` s (blocked on one of ``fifos``), unblock it
    (so that the test process can exit) and fail. Returns ``fn``'s result, or raises its exception."""
    import contextlib
    import os
    import threading

    import pytest

    result: dict = {}

    def target() -> None:
        try:
            result["value"] = fn()
        except BaseException as e:  # handed back to the test
            result["error"] = e

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        for fifo in fifos:  # a reader blocked in open waits for a writer, a writer for a reader: give both
            for flags in (os.O_WRONLY | os.O_NONBLOCK, os.O_RDONLY | os.O_NONBLOCK):
                with contextlib.suppress(OSError):
                    os.close(os.open(fifo, flags))
        worker.join(10)
        pytest.fail(f"blocked for {timeout:g} s on a FIFO ({', '.join(map(str, fifos))})")
    if "error" in result:
        raise result["error"]
    return result.get("value")


def cli(*args: str, env: dict | None = None, timeout: float = 300, cwd=None):
    """``python -m fcnseg ARGS`` in a child process (this tree's fcnseg first on the path): the CompletedProcess."""
    import os
    import subprocess
    import sys

    import fcnseg

    src = str(Path(fcnseg.__file__).resolve().parents[1])  # the fcnseg under test
    full = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        [sys.executable, "-m", "fcnseg", *args],
        capture_output=True,
        text=True,
        env={**full, **(env or {})},
        timeout=timeout,
        cwd=cwd,
    )


def read_only_temp_files(monkeypatch) -> None:
    """Make ``fcnseg.io``'s ``os.open`` of temp files fail as on a read-only file system (``EROFS``, naming the
    temp file, as the OS does): the error fcnseg reports must name the target instead."""
    import errno

    real_open = os.open

    def read_only(path, *args, **kwargs):
        if str(path).endswith(".tmp"):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("fcnseg.io.os.open", read_only)
