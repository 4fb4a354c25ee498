"""Exported engines of a model file, kept under ``FCNSEG_HOME/engines/`` — never beside the user's files.

One entry per model file *content* (SHA-256 of the file, computed once per file version and remembered by path,
size, mtime and inode in ``FCNSEG_HOME/hashes.json``) and library versions: a retrained checkpoint copied over
the old one, or an upgrade, gets a new entry; a copy of the same file elsewhere shares it. An entry holds each
exported graph in its own folder with a record of what it was made from (the file's hash, the versions, the
model's interface) and of its own files (size and SHA-256); a graph is used only when all of it checks, else it is
made again. Entries are made under a lock (concurrent processes make one once and the others wait, then read it),
in a temporary folder renamed into place, so no process ever sees half a graph. The cache is bounded
(``FCNSEG_CACHE_MAX_GB``, default 8): the least recently used entries go first.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from ..errors import ExportError, FCNError
from ..files import open_regular, read_bytes
from ..home import home
from ..io import atomic_write

__all__ = ["GraphStore", "evict", "file_sha256", "versions"]

#: libraries whose versions key an entry (read from package metadata: nothing is imported)
_LIBRARIES = ("torch", "onnx", "onnxscript", "onnxruntime", "openvino", "nncf")
#: hashes.json keeps this many files' hashes
_MAX_HASHES = 512
#: a record file larger than this is not one of ours
_MAX_RECORD = 1 << 20


def versions() -> dict[str, str | None]:
    """fcnseg's and the exporting libraries' versions."""
    from .. import __version__

    out: dict[str, str | None] = {"fcnseg": __version__}
    for lib in _LIBRARIES:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            out[lib] = None
    return out


def file_sha256(path: str | Path, chunk: int = 1 << 22) -> str:
    """The SHA-256 of a file, read in 4 MB chunks."""
    digest = hashlib.sha256()
    with open_regular(path, what="model file") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _read_json(path: Path) -> Any:
    """A record under ``FCNSEG_HOME``, or None when it is missing, not a regular file (a FIFO is never waited on),
    too large or damaged: the cache then counts as empty."""
    try:
        return json.loads(read_bytes(path, limit=_MAX_RECORD, what="record"))
    except (FCNError, OSError, ValueError, RecursionError):
        return None


#: process-local side of the locks: one re-entrant lock and a depth per lock file
_GUARD = threading.Lock()
_THREAD_LOCKS: dict[str, threading.RLock] = {}
_DEPTH: dict[str, int] = {}


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` for the block (released by the OS if the process dies).

    Re-entrant within a process: a block that already holds it (e.g. the int8 OpenVINO graph being made, which
    needs the entry's ONNX graph) takes it again without waiting — a second ``flock`` on a new descriptor of the
    same file would wait for the first forever. Threads of one process take turns through a lock of their own.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    key = os.path.realpath(path)
    with _GUARD:
        thread_lock = _THREAD_LOCKS.setdefault(key, threading.RLock())
    with thread_lock:
        depth = _DEPTH.get(key, 0)
        _DEPTH[key] = depth + 1
        try:
            if depth:
                yield
            else:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                    yield
                finally:
                    os.close(fd)
        finally:
            _DEPTH[key] -= 1


def content_key(path: Path) -> str:
    """The SHA-256 of ``path``'s content, remembered by (real path, size, mtime, inode) so it is read once."""
    stat = path.stat()
    ident = f"{os.path.realpath(path)}|{stat.st_size}|{stat.st_mtime_ns}|{stat.st_ino}"
    memo_path = home() / "hashes.json"
    memo = _read_json(memo_path)
    memo = memo if isinstance(memo, dict) else {}
    if isinstance(memo.get(ident), str):
        return memo[ident]
    digest = file_sha256(path)
    try:
        with _locked(home() / ".hashes.lock"):
            latest = _read_json(memo_path)
            latest = latest if isinstance(latest, dict) else {}
            latest[ident] = digest
            keep = dict(list(latest.items())[-_MAX_HASHES:])
            with atomic_write(memo_path, "w") as f:
                json.dump(keep, f)
    except OSError:  # a read-only cache: the hash is just not remembered
        pass
    return digest


class GraphStore:
    """The cache entry of one model file: its exported graphs, compiled-model caches and engine decisions."""

    def __init__(self, file: str | Path) -> None:
        self.file = Path(file)
        self.source_sha256 = content_key(self.file)
        self.versions = versions()
        tag = hashlib.sha256(json.dumps(self.versions, sort_keys=True).encode()).hexdigest()[:8]
        self.root = home() / "engines" / f"{self.source_sha256[:20]}-{tag}"

    def dir(self, name: str) -> Path:
        """``root/name``, created."""
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def touch(self) -> None:
        """Mark the entry used now (least-recently-used eviction reads it)."""
        with contextlib.suppress(OSError):
            self.root.mkdir(parents=True, exist_ok=True)
            (self.root / "last_used").write_text(str(time.time()))

    def _valid(self, kind: str, interface: dict[str, Any], *, deep: bool) -> Path | None:
        folder = self.root / kind
        record = _read_json(folder / "record.json")
        if not isinstance(record, dict) or record.get("source_sha256") != self.source_sha256:
            return None
        if record.get("versions") != self.versions or record.get("interface") != interface:
            return None
        files = record.get("files")
        if not isinstance(files, dict) or not files:
            return None
        for name, meta in files.items():
            path = folder / name
            if not path.is_file() or not isinstance(meta, dict) or path.stat().st_size != meta.get("size"):
                return None
            if deep and file_sha256(path) != meta.get("sha256"):
                return None
        return folder / str(record.get("main"))

    def graph(self, kind: str, interface: dict[str, Any], make: Callable[[Path], str]) -> Path:
        """The main file of graph ``kind``: the cached one when its record and files check (hashes included), else
        made by ``make(tmp_folder)`` — which writes its files there and returns the main file's name — under the
        entry's lock, then moved into place whole.

        Raises:
            ExportError: ``make`` failed (the cache keeps nothing of it).
        """
        found = self._valid(kind, interface, deep=True)
        if found is not None:
            self.touch()
            return found
        self.root.mkdir(parents=True, exist_ok=True)
        with _locked(self.root / ".lock"):
            found = self._valid(kind, interface, deep=True)  # made by another process while we waited
            if found is not None:
                return found
            tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{kind}-", dir=self.root))
            try:
                main = make(tmp)
                files = {
                    p.name: {"size": p.stat().st_size, "sha256": file_sha256(p)} for p in tmp.iterdir() if p.is_file()
                }
                record = {
                    "source_sha256": self.source_sha256,
                    "source": str(self.file),
                    "kind": kind,
                    "versions": self.versions,
                    "interface": interface,
                    "files": files,
                    "main": main,
                }
                with open(tmp / "record.json", "w", encoding="utf-8") as f:
                    json.dump(record, f, indent=1)
                target = self.root / kind
                if target.exists():
                    shutil.rmtree(target)
                tmp.rename(target)
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
        self.touch()
        evict(keep=self.root)
        return self.root / kind / main

    # -- decisions and measured costs, per machine ------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """An exclusive lock ``root/.name.lock`` for the block (e.g. one process measures, the others wait)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with _locked(self.root / f".{name}.lock"):
            yield

    def read(self, name: str) -> dict[str, Any]:
        """The JSON record ``root/name`` (empty when missing or damaged)."""
        data = _read_json(self.root / name)
        return data if isinstance(data, dict) else {}

    @contextlib.contextmanager
    def update(self, name: str) -> Iterator[dict[str, Any]]:
        """The record ``root/name`` under the entry's lock, written back when the block changed it."""
        self.root.mkdir(parents=True, exist_ok=True)
        with _locked(self.root / ".lock"):
            data = self.read(name)
            before = json.dumps(data, sort_keys=True)
            yield data
            if json.dumps(data, sort_keys=True) != before:
                with atomic_write(self.root / name, "w") as f:
                    json.dump(data, f, indent=1, sort_keys=True)


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _last_used(path: Path) -> float:
    try:
        return float(read_bytes(path / "last_used", limit=64, what="record"))
    except (FCNError, OSError, ValueError):
        return 0.0


def evict(max_bytes: int | None = None, *, keep: Path | None = None) -> list[Path]:
    """Remove the least recently used entries until the engine cache is at most ``max_bytes``
    (default ``FCNSEG_CACHE_MAX_GB``, 8 GB); ``keep`` (the entry in use) is never removed. Returns what went."""
    if max_bytes is None:
        try:
            max_bytes = int(float(os.environ.get("FCNSEG_CACHE_MAX_GB", "8")) * 2**30)
        except ValueError:
            raise ExportError(f"FCNSEG_CACHE_MAX_GB={os.environ['FCNSEG_CACHE_MAX_GB']!r}: expected a number") from None
    root = home() / "engines"
    if not root.is_dir():
        return []
    entries = sorted((p for p in root.iterdir() if p.is_dir()), key=_last_used)
    sizes = {p: _size(p) for p in entries}
    total, removed = sum(sizes.values()), []
    for entry in entries:
        if total <= max_bytes:
            break
        if keep is not None and entry == keep:
            continue
        with contextlib.suppress(OSError), _locked(entry / ".lock"):
            shutil.rmtree(entry)
            total -= sizes[entry]
            removed.append(entry)
    return removed
