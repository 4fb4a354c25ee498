"""The weights cache: each entry fetched once, converted once, kept with its record in ``FCNSEG_HOME/weights``.

``FCNSEG_HOME/weights/MODEL.TAG/`` holds what fcnseg loads — an fcnseg checkpoint (``model.safetensors``: classes,
preprocessing, the entry's provenance and published metrics in its metadata) or a trunk's state dict
(``backbone.safetensors``) — and ``record.json`` (where the file came from, its SHA-256 and size, the artefact's
SHA-256 and size). A cached artefact is used only when its size and SHA-256 match its record; later uses read it
and nothing else (no network). It is made under a per-entry lock, in a temporary folder renamed into place, so a
second process waits and then reads it, and a killed one leaves nothing that looks complete.

Files without a published checksum are checked by size (at least what the net's weights need) and structure (every
blob against the net, by the converter), and their SHA-256 is pinned in ``pins.json`` on first download: a later
download (another mirror, a cache rebuilt) that differs is refused.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import CheckpointError, FCNError, WeightsError
from ..home import home, offline, subdir
from ..io import atomic_write
from .fetch import download, failure, file_lock, hand_path, source_url, verify
from .records import Weights

__all__ = ["cached_path", "ensure", "entry_dir", "is_cached", "remove"]

RECORD = "record.json"
PINS = "pins.json"
_MAX_RECORD = 1 << 20
log = logging.getLogger("fcnseg")


def entry_dir(entry: Weights) -> Path:
    """``FCNSEG_HOME/weights/MODEL.TAG`` (not created)."""
    return home() / "weights" / entry.name


def _artefact(entry: Weights) -> Path:
    return entry_dir(entry) / ("backbone.safetensors" if entry.backbone else "model.safetensors")


def _read_json(path: Path) -> Any:
    try:
        if not path.is_file() or path.stat().st_size > _MAX_RECORD:
            return None
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None


def _sha256(path: Path) -> str:
    import pooch

    return pooch.file_hash(str(path), alg="sha256")


def is_cached(entry: Weights) -> bool:
    """Whether the entry's artefact and record are in the cache (sizes only: for listings)."""
    record = _read_json(entry_dir(entry) / RECORD)
    path = _artefact(entry)
    return isinstance(record, dict) and path.is_file() and path.stat().st_size == record.get("artefact_bytes")


def cached_path(entry: Weights) -> Path | None:
    """The cached artefact if its size and SHA-256 match its record, else None (a damaged one is reported)."""
    record = _read_json(entry_dir(entry) / RECORD)
    path = _artefact(entry)
    if not isinstance(record, dict) or not path.is_file():
        return None
    size = path.stat().st_size
    if size != record.get("artefact_bytes") or _sha256(path) != record.get("artefact_sha256"):
        log.warning("cached %s is damaged (%s differs from its record): it will be made again", entry.name, path)
        return None
    return path


def remove(entry: Weights) -> bool:
    """Delete the entry's cache folder; returns whether there was one."""
    folder = entry_dir(entry)
    with file_lock(entry.name):
        if not folder.exists():
            return False
        shutil.rmtree(folder)
        return True


def ensure(entry: Weights) -> Path:
    """The entry's cached artefact, fetched and converted first if needed (once, whatever the processes).

    Raises:
        WeightsError: offline and not cached, or the fetch or the conversion failed (one line; nothing is left).
    """
    path = cached_path(entry)
    if path is not None:
        return path
    with file_lock(entry.name):
        path = cached_path(entry)  # another process may have made it while this one waited
        if path is not None:
            return path
        root = subdir("weights")
        for stale in root.glob(f".tmp-{entry.name}-*"):  # left by a killed process (only the lock holder makes them)
            shutil.rmtree(stale, ignore_errors=True)
        if entry_dir(entry).exists():
            shutil.rmtree(entry_dir(entry))
        return _make(entry, root)


def _make(entry: Weights, root: Path) -> Path:
    file = entry.source_file()
    placed = hand_path(file)
    by_hand = placed.is_file()
    if by_hand:
        log.info("using %s (downloaded by hand)", placed)
        verify(placed, file)
    elif offline():
        raise WeightsError(
            f"{entry.name} is not cached and FCNSEG_OFFLINE=1 forbids downloading {file.name} (from "
            f"{source_url(file)}); download it elsewhere and put it at {placed}, or unset FCNSEG_OFFLINE"
        )
    staging = root / ".staging" / entry.name
    shutil.rmtree(staging, ignore_errors=True)
    tmp = root / f".tmp-{entry.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        raw = placed if by_hand else download(file, staging, reserve=2.0)
        return _convert_and_record(entry, raw, tmp, by_hand)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(staging, ignore_errors=True)


def _convert_and_record(entry: Weights, raw: Path, tmp: Path, by_hand: bool) -> Path:
    """Convert ``raw`` into ``tmp`` with its record, then rename ``tmp`` into place (and pin a checksum-less file)."""
    file = entry.source_file()
    placed = hand_path(file)
    try:
        digest, size = _sha256(raw), raw.stat().st_size
        if file.checksum is None:
            _check_pin(file.name, digest)
        start = time.perf_counter()
        artefact = _convert(entry, raw, tmp, {"sha256": digest, "bytes": size})
        record = {
            "name": entry.name,
            "file": file.name,
            "source": str(placed) if by_hand else source_url(file),
            "published_checksum": file.checksum,
            "download_sha256": digest,
            "download_bytes": size,
            "artefact": artefact.name,
            "artefact_sha256": _sha256(artefact),
            "artefact_bytes": artefact.stat().st_size,
            "fcnseg": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        with atomic_write(tmp / RECORD, "w") as f:
            json.dump(record, f, indent=2)
        os.replace(tmp, entry_dir(entry))
        log.info("converted %s in %.1f s; cached in %s", entry.name, time.perf_counter() - start, entry_dir(entry))
        if file.checksum is None:
            _pin(file.name, digest, size)
    except FCNError as e:
        message = str(e).replace(str(raw), file.name)
        if by_hand:
            raise WeightsError(f"{placed}: {message}; replace it with a good copy of {file.url}") from None
        raise failure(file, source_url(file), message) from None
    if by_hand:
        placed.unlink(missing_ok=True)  # converted: the cache keeps the converted copy only
    return entry_dir(entry) / artefact.name


def _pins_path() -> Path:
    return subdir("weights") / PINS


def _check_pin(name: str, digest: str) -> None:
    """A file without a published checksum must be the one first downloaded (its pinned SHA-256)."""
    pins = _read_json(_pins_path())
    pin = pins.get(name) if isinstance(pins, dict) else None
    if isinstance(pin, dict) and pin.get("sha256") != digest:
        raise CheckpointError(
            f"its SHA-256 {digest[:16]}… differs from the copy first downloaded on {pin.get('first', '?')} "
            f"({str(pin.get('sha256'))[:16]}…, pinned in {_pins_path()}): the file changed; if you trust the new "
            "one, delete its line there"
        )


def _pin(name: str, digest: str, size: int) -> None:
    """Record the SHA-256 of file ``name`` the first time it is downloaded (checked on every later download)."""
    with file_lock(PINS):
        pins = _read_json(_pins_path())
        pins = pins if isinstance(pins, dict) else {}
        if name in pins:
            return
        pins[name] = {"sha256": digest, "bytes": size, "first": time.strftime("%Y-%m-%d")}
        with atomic_write(_pins_path(), "w") as f:
            json.dump(pins, f, indent=2, sort_keys=True)


def _convert(entry: Weights, raw: Path, out: Path, download: dict[str, Any]) -> Path:
    """Turn the fetched file into what fcnseg loads, in folder ``out``."""
    from .convert import backbone_state, fcn_model

    out.mkdir(parents=True, exist_ok=True)
    provenance = {**entry.describe(), "download": download}
    if entry.backbone:
        from safetensors.torch import save

        state = backbone_state(entry, raw)
        path = out / "backbone.safetensors"
        meta = {"fcnseg_weights": json.dumps(provenance)}
        with atomic_write(path) as f:
            f.write(save({k: v.contiguous() for k, v in state.items()}, metadata=meta))
        return path
    from ..runtime.checkpoint import save_checkpoint

    model, info = fcn_model(entry, raw)
    # not a "data" section: that is the training data (calibration reads it), which these weights do not bring
    info.config = {"reference_net": entry.net, "weights": provenance}
    return save_checkpoint(out / "model", model, info)
