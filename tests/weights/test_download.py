"""Registry weights fetched over a loopback mirror: download, check, convert, cache, and every way a fetch fails.

The files are scaled-down ``.caffemodel`` files in the release's real format (1/16 width), served by ``http.server``
in a thread as ``FCNSEG_WEIGHTS_MIRROR``; the registry's entries are replaced by copies at that width.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fcnseg.cli.main import main
from fcnseg.weights import cache, fetch
from fcnseg.weights.table import get_weights, register_weights
from tests.weights.files import W, scaled, write_caffemodel

REPO = Path(__file__).resolve().parents[2]
FILE = "fcn8s-heavy-pascal.caffemodel"
NAME = "fcn8s_vgg16.voc"


def _photo(path: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (45, 61, 3), dtype=np.uint8)).save(path)
    return path


def _left_behind(home: Path) -> list[str]:
    """Files under FCNSEG_HOME/weights other than lock files: what a failed fetch must not leave."""
    root = home / "weights"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and ".locks" not in p.parts)


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if "error:" in line]


def test_first_use_downloads_converts_caches_and_predicts_as_convert_caffe(
    tmp_path, mirror, scaled_registry, fcnseg_home, monkeypatch, capsys
) -> None:
    write_caffemodel(mirror.root / FILE, "voc-fcn8s")
    photo = _photo(tmp_path / "photo.png")
    direct = tmp_path / "direct.safetensors"
    argv = ["convert", "caffe", str(mirror.root / FILE), "--net", "voc-fcn8s", "--out", str(direct)]
    assert main([*argv, "--width", str(W)]) == 0
    assert main(["predict", "--checkpoint", str(direct), str(photo), "--out", str(tmp_path / "direct")]) == 0

    assert (
        main(["predict", "--model", "fcn8s_vgg16", "--weights", "voc", str(photo), "--out", str(tmp_path / "a")]) == 0
    )
    assert mirror.counts[FILE] == 1
    cached = fcnseg_home / "weights" / NAME / "model.safetensors"
    record = json.loads((cached.parent / "record.json").read_text())
    served = (mirror.root / FILE).read_bytes()
    assert record["download_sha256"] == hashlib.sha256(served).hexdigest()
    assert record["artefact_sha256"] == hashlib.sha256(cached.read_bytes()).hexdigest()
    pins = json.loads((fcnseg_home / "weights" / "pins.json").read_text())
    assert pins[FILE]["sha256"] == record["download_sha256"]  # no published checksum: pinned on first download
    assert (tmp_path / "a" / "photo.png").read_bytes() == (tmp_path / "direct" / "photo.png").read_bytes()

    from fcnseg.runtime.checkpoint import load_checkpoint, read_info

    (a, info), (b, _) = load_checkpoint(cached), load_checkpoint(direct)
    assert all((a.state_dict()[k] == v).all() for k, v in b.state_dict().items())
    assert info.config["weights"]["name"] == NAME and info.config["weights"]["metrics"] == {"mean_iu": 65.5}
    assert info.config["weights"]["eval_data"] == {"name": "voc", "val_split": "seg11valid"}
    assert "data" not in info.config and read_info(cached).classes[15] == "person"  # no training set comes with it
    assert _left_behind(fcnseg_home) == [f"{NAME}/model.safetensors", f"{NAME}/record.json", "pins.json"]

    mirror.stop()  # later uses: the cache, no network (the server is gone and downloads are forbidden)
    monkeypatch.setenv("FCNSEG_OFFLINE", "1")
    assert main(["predict", "--weights", NAME, str(photo), "--out", str(tmp_path / "b")]) == 0
    assert (tmp_path / "b" / "photo.png").read_bytes() == (tmp_path / "a" / "photo.png").read_bytes()
    assert mirror.counts[FILE] == 1


def _cli(args: list[str], env: dict[str, str] | None = None, **kw) -> subprocess.CompletedProcess:
    """``fcnseg ARGS`` in a child process, with the registry scaled down."""
    full = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    cmd = [sys.executable, "-m", "tests.weights.scaled_cli", *args]
    return subprocess.run(cmd, cwd=REPO, env=full, capture_output=True, text=True, timeout=300, **kw)


def _dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.mark.parametrize("fault", ["dead server", "404", "truncated body"])
def test_a_failed_download_is_one_line_and_leaves_nothing(tmp_path, mirror, fault, fcnseg_home) -> None:
    write_caffemodel(mirror.root / FILE, "voc-fcn8s")
    env = {}
    if fault == "dead server":
        env["FCNSEG_WEIGHTS_MIRROR"] = _dead_url()
    elif fault == "404":
        mirror.modes[FILE] = "404"
    else:
        mirror.modes[FILE] = "truncate"
    photo = _photo(tmp_path / "photo.png")
    out = _cli(["predict", "--model", "fcn8s_vgg16", "--weights", "voc", str(photo), "--out", str(tmp_path / "p")], env)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    (line,) = _error_lines(out.stderr)
    url = (env.get("FCNSEG_WEIGHTS_MIRROR") or mirror.url) + FILE
    assert line.startswith(f"fcnseg predict: error: {FILE} from {url}: ")
    expected = {"dead server": "connection refused", "404": "HTTP 404", "truncated body": "truncated"}[fault]
    assert expected in line
    assert f"put it at {fcnseg_home / 'weights' / 'downloads' / FILE}" in line  # what to do
    if fault == "truncated body":
        assert mirror.counts[FILE] == fetch.ATTEMPTS  # retried, then given up
    assert _left_behind(fcnseg_home) == [] and not (tmp_path / "p").exists()


def test_checksum_mismatch_is_refused_before_use(tmp_path, mirror, fcnseg_home, capsys) -> None:
    write_caffemodel(mirror.root / FILE, "voc-fcn8s")
    entry = get_weights(NAME)
    register_weights(scaled(entry, checksum="sha1:" + "0" * 40), replace=True)
    try:
        code = main(["weights", NAME, "--fetch"])
    finally:
        register_weights(entry, replace=True)
    (line,) = _error_lines(capsys.readouterr().err)
    assert code == 2 and f"{FILE} from {mirror.url}{FILE}: its SHA1 is " in line and "0" * 40 in line
    assert _left_behind(fcnseg_home) == []


def test_a_published_checksum_that_matches_is_accepted(mirror, fcnseg_home) -> None:
    write_caffemodel(mirror.root / FILE, "voc-fcn8s")
    entry = get_weights(NAME)
    for alg in ("sha1", "md5", "sha256"):
        digest = hashlib.new(alg, (mirror.root / FILE).read_bytes()).hexdigest()
        register_weights(scaled(entry, checksum=f"{alg}:{digest}"), replace=True)
        try:
            path = cache.ensure(get_weights(NAME))
        finally:
            register_weights(entry, replace=True)
        assert path.is_file()
        cache.remove(get_weights(NAME))
    assert not (fcnseg_home / "weights" / "pins.json").exists()  # published checksums need no pin


def test_a_dropped_transfer_resumes_with_range(mirror, scaled_registry, fcnseg_home, caplog) -> None:
    write_caffemodel(mirror.root / FILE, "voc-fcn8s")
    mirror.modes[FILE] = "resumable"  # the first response breaks off half-way; a Range request gets the rest
    path = cache.ensure(get_weights(NAME))
    assert mirror.counts[FILE] == 2 and path.is_file()
    record = json.loads((path.parent / "record.json").read_text())
    assert record["download_sha256"] == hashlib.sha256((mirror.root / FILE).read_bytes()).hexdigest()


def test_no_room_on_disk(mirror, scaled_registry, fcnseg_home, monkeypatch) -> None:
    write_caffemodel(mirror.root / FILE, "voc-fcn8s")
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(fetch.shutil, "disk_usage", lambda _path: usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(fetch.WeightsError, match=r"needs about \d+ MB free in .*there are 0 MB"):
        cache.ensure(get_weights(NAME))
    assert _left_behind(fcnseg_home) == []


def test_disk_full_while_writing(mirror, scaled_registry, fcnseg_home, monkeypatch) -> None:
    write_caffemodel(mirror.root / FILE, "voc-fcn8s")

    class Full(io.BytesIO):
        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    real_open = open
    monkeypatch.setattr(
        fetch, "open", lambda path, mode="r", *a: Full() if "b" in mode else real_open(path, mode, *a), raising=False
    )
    with pytest.raises(fetch.WeightsError, match=f"{FILE} from .*: the disk of .* is full"):
        cache.ensure(get_weights(NAME))
    assert _left_behind(fcnseg_home) == []


def test_offline_and_not_cached_says_where_to_put_a_hand_download(
    mirror, scaled_registry, fcnseg_home, monkeypatch
) -> None:
    write_caffemodel(mirror.root / FILE, "voc-fcn8s")
    monkeypatch.setenv("FCNSEG_OFFLINE", "1")
    hand = fcnseg_home / "weights" / "downloads" / FILE
    with pytest.raises(fetch.WeightsError, match=f"FCNSEG_OFFLINE=1 forbids downloading {FILE}.*put it at {hand}"):
        cache.ensure(get_weights(NAME))
    assert mirror.counts[FILE] == 0
    hand.parent.mkdir(parents=True)
    hand.write_bytes((mirror.root / FILE).read_bytes())  # downloaded by hand
    path = cache.ensure(get_weights(NAME))
    assert path.is_file() and not hand.exists() and mirror.counts[FILE] == 0  # converted, the download removed


def test_a_changed_file_without_published_checksum_is_refused(tmp_path, mirror, scaled_registry, fcnseg_home) -> None:
    write_caffemodel(mirror.root / FILE, "voc-fcn8s")
    cache.ensure(get_weights(NAME))
    assert cache.remove(get_weights(NAME))
    data = bytearray((mirror.root / FILE).read_bytes())
    data[-1] ^= 0x01  # the mirror now serves another file of that name: one weight differs
    (mirror.root / FILE).write_bytes(bytes(data))
    with pytest.raises(fetch.WeightsError, match=r"differs from the copy first downloaded on .* pinned in"):
        cache.ensure(get_weights(NAME))
    assert _left_behind(fcnseg_home) == ["pins.json"]


def test_a_file_too_small_for_the_net_or_not_fitting_it_is_refused(mirror, scaled_registry, fcnseg_home) -> None:
    write_caffemodel(mirror.root / FILE, "voc-fcn32s")  # another net's file under fcn8s's name
    with pytest.raises(fetch.WeightsError, match=f"{FILE} from .*does not fit fcn8s_vgg16"):
        cache.ensure(get_weights(NAME))
    (mirror.root / FILE).write_bytes((mirror.root / FILE).read_bytes()[:5000])
    cache.remove(get_weights(NAME))
    pins = fcnseg_home / "weights" / "pins.json"
    assert not pins.exists()  # nothing was pinned: the file never converted
    with pytest.raises(fetch.WeightsError, match=r"5000 bytes, but voc-fcn8s's weights alone take \d+"):
        cache.ensure(get_weights(NAME))
    assert _left_behind(fcnseg_home) == []


def test_a_damaged_cache_is_made_again(mirror, scaled_registry, fcnseg_home, monkeypatch) -> None:
    write_caffemodel(mirror.root / FILE, "voc-fcn8s")
    path = cache.ensure(get_weights(NAME))
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    monkeypatch.setenv("FCNSEG_OFFLINE", "1")
    with pytest.raises(fetch.WeightsError, match="is not cached and FCNSEG_OFFLINE=1"):
        cache.ensure(get_weights(NAME))
    monkeypatch.delenv("FCNSEG_OFFLINE")
    assert cache.ensure(get_weights(NAME)) == path and mirror.counts[FILE] == 2
    assert cache.cached_path(get_weights(NAME)) == path


def test_two_processes_download_once(tmp_path, mirror, fcnseg_home) -> None:
    """The first process holds the lock while the server holds its transfer; the second waits, then reads the cache."""
    write_caffemodel(mirror.root / FILE, "voc-fcn8s")
    mirror.hold()
    args = ["weights", NAME, "--fetch"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "tests.weights.scaled_cli", *args]
    first = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert mirror.wait_for_request(FILE, timeout=120), "the first process never asked for the file"
        second = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        waited = ""
        for line in second.stderr:  # the second is blocked on the first's lock
            waited += line
            if "waiting for another process that is fetching" in line:
                break
        mirror.release()
        out1, err1 = first.communicate(timeout=120)
        out2, err2 = second.communicate(timeout=120)
    finally:
        mirror.release()
        for p in (first, second) if "second" in locals() else (first,):
            p.kill() if p.poll() is None else None
    assert first.returncode == 0 and second.returncode == 0, err1 + waited + err2
    assert "waiting for another process" in waited
    assert mirror.counts[FILE] == 1
    assert out1 == out2 == f"{NAME}: {fcnseg_home / 'weights' / NAME / 'model.safetensors'}\n"


def test_the_origin_url_when_no_mirror_is_set(tmp_path, mirror, fcnseg_home, monkeypatch) -> None:
    write_caffemodel(mirror.root / FILE, "voc-fcn8s")
    monkeypatch.delenv("FCNSEG_WEIGHTS_MIRROR")
    entry = get_weights(NAME)
    own = replace(scaled(entry), file=replace(entry.file, url=mirror.url + FILE, checksum=None))  # a lab's server
    register_weights(own, replace=True)
    try:
        assert fetch.source_url(own.file) == mirror.url + FILE
        assert cache.ensure(own).is_file() and mirror.counts[FILE] == 1
    finally:
        register_weights(entry, replace=True)


def test_google_drive_origins_go_through_gdown(mirror, fcnseg_home, monkeypatch) -> None:
    """torchfcn's files: without a mirror, gdown fetches the Drive id (its confirmation page is its business); the
    md5 is checked all the same. Without gdown, one line names the extra."""
    import torch

    from fcnseg.models import get_model

    monkeypatch.delenv("FCNSEG_WEIGHTS_MIRROR")
    entry = get_weights("fcn32s_vgg16.voc-torchfcn")
    state = get_model("fcn32s_vgg16", width=W).state_dict()
    torch.save(state, mirror.root / entry.file.name)
    md5 = hashlib.md5((mirror.root / entry.file.name).read_bytes()).hexdigest()
    register_weights(scaled(entry, checksum=f"md5:{md5}"), replace=True)
    calls = []

    def download(id, output, quiet, retries):  # gdown.download's keywords as fcnseg calls it
        calls.append(id)
        Path(output).write_bytes((mirror.root / entry.file.name).read_bytes())
        return output

    fake = type(sys)("gdown")
    fake.download = download
    exceptions = type(sys)("gdown.exceptions")
    exceptions.DownloadError = type("DownloadError", (Exception,), {})
    fake.exceptions = exceptions
    try:
        monkeypatch.setitem(sys.modules, "gdown", None)
        with pytest.raises(fetch.WeightsError, match=r"Google Drive files need gdown: pip install 'fcnseg\[gdrive\]'"):
            cache.ensure(get_weights(entry.name))
        monkeypatch.setitem(sys.modules, "gdown", fake)
        monkeypatch.setitem(sys.modules, "gdown.exceptions", exceptions)
        path = cache.ensure(get_weights(entry.name))
    finally:
        register_weights(entry, replace=True)
    assert calls == ["11k2Q0bvRQgQbT6-jYWeh6nmAsWlSCY3f"] and path.is_file() and mirror.counts == {}


def test_a_host_name_that_does_not_resolve_says_so_not_that_the_server_is_down() -> None:
    from fcnseg.weights.fetch import _reason

    dns = OSError("HTTPConnectionPool: [Errno -2] Name or service not known')")
    refused = OSError("HTTPConnectionPool: [Errno 111] Connection refused')")
    assert _reason(dns) == "cannot connect: name or service not known (no network here, or a misspelt host)"
    assert _reason(refused) == "cannot connect: connection refused (is the server up?)"
