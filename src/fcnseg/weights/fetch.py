"""Fetching weight files: from their origin or a mirror, verified before use, once across processes.

``FCNSEG_WEIGHTS_MIRROR`` (a base URL) replaces every origin: each file is fetched as MIRROR + its file name.
``FCNSEG_OFFLINE=1`` forbids fetching. A file is streamed by :func:`pooch.retrieve` into a temporary file beside its
destination and moved into place only once its published checksum matches; the transfer resumes with an HTTP
``Range`` request where the server allows when the connection drops mid-file, and is retried from the start where
it does not. Any failure (server down, HTTP error, truncated body, checksum mismatch, full disk) is one
:class:`~fcnseg.errors.WeightsError` line naming the file, the URL and what to do, and leaves no file behind.
Google Drive origins (torchfcn's files) go through ``gdown``, which handles Drive's confirmation page.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..errors import WeightsError
from ..home import offline, subdir
from .records import WeightFile

__all__ = ["MIRROR_ENV", "download", "file_lock", "hand_path", "source_url", "verify"]

MIRROR_ENV = "FCNSEG_WEIGHTS_MIRROR"
#: a transfer that drops mid-file is resumed (or restarted) this many times
ATTEMPTS = 3
#: seconds to connect, and to wait between bytes
TIMEOUT = (15.0, 120.0)
_CHUNK = 1 << 20
log = logging.getLogger("fcnseg")


class _Failure(Exception):
    """A failed transfer, with the reason to show (turned into one WeightsError line by :func:`download`)."""


def source_url(file: WeightFile) -> str:
    """Where ``file`` is fetched from: ``$FCNSEG_WEIGHTS_MIRROR/NAME`` when a mirror is set, else its origin."""
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    if mirror:
        return (mirror if mirror.endswith("/") else mirror + "/") + file.name
    return file.url


def hand_path(file: WeightFile) -> Path:
    """Where a file downloaded by hand goes: ``FCNSEG_HOME/weights/downloads/NAME`` (checked, then converted)."""
    return subdir("weights") / "downloads" / file.name


def _todo(file: WeightFile) -> str:
    return (
        f"retry later, set {MIRROR_ENV} to a server that has {file.name}, or download it by hand "
        f"(from {file.url}) and put it at {hand_path(file)}"
    )


def failure(file: WeightFile, url: str, what: str) -> WeightsError:
    """The one-line error of a fetch that failed: the file, the URL, what happened, what to do."""
    return WeightsError(f"{file.name} from {url}: {what}; {_todo(file)}")


@contextlib.contextmanager
def file_lock(name: str) -> Iterator[None]:
    """An inter-process lock for fetching ``name`` (``FCNSEG_HOME/weights/.locks/NAME.lock``; the OS releases it
    if the holder dies): torchrun ranks or Ray workers asking for the same file fetch it once."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(subdir("weights/.locks") / f"{name}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.info("waiting for another process that is fetching %s", name)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _pooch_hash(checksum: str | None) -> str | None:
    """The checksum in pooch's ``alg:hex`` form (None: none published, or only torchvision's SHA-256 prefix)."""
    if checksum is None or checksum.startswith("sha256-prefix:"):
        return None
    return checksum


def _check_prefix(path: Path, file: WeightFile, url: str) -> None:
    if file.checksum and file.checksum.startswith("sha256-prefix:"):
        import pooch

        prefix = file.checksum.split(":", 1)[1]
        actual = pooch.file_hash(str(path), alg="sha256")
        if not actual.startswith(prefix):
            path.unlink(missing_ok=True)
            raise failure(file, url, f"SHA-256 {actual[:16]}… does not start with the published {prefix}")


def verify(path: Path, file: WeightFile) -> None:
    """Check a file already on disk (one downloaded by hand) against ``file``'s published checksum.

    Raises:
        WeightsError: it does not match (the file is left where it is, for the user to replace).
    """
    import pooch

    known = _pooch_hash(file.checksum)
    if known is not None and not pooch.hash_matches(str(path), known):
        alg = known.split(":", 1)[0].upper()
        raise WeightsError(
            f"{path}: its {alg} is not the published {known.split(':', 1)[1]} of {file.name} (a damaged or "
            f"different file); replace it with a good copy from {file.url}, or remove it to download again"
        )
    if file.checksum and file.checksum.startswith("sha256-prefix:"):
        prefix = file.checksum.split(":", 1)[1]
        if not pooch.file_hash(str(path), alg="sha256").startswith(prefix):
            raise WeightsError(f"{path}: its SHA-256 does not start with the published {prefix} of {file.name}")


@contextlib.contextmanager
def _quiet_pooch() -> Iterator[None]:
    """pooch's own logger (a stderr handler of its own) says nothing while fcnseg reports the fetch itself."""
    import pooch

    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def download(file: WeightFile, folder: Path, *, reserve: float = 1.0) -> Path:
    """Fetch ``file`` into ``folder/NAME``, its published checksum checked before it is moved into place.

    Args:
        reserve: free space to require, as a multiple of the file's size (2: the file and a converted copy).

    Raises:
        WeightsError: offline, or any failure (one line; nothing is left in ``folder``).
    """
    url = source_url(file)
    if offline():
        raise WeightsError(
            f"{file.name} is not cached and FCNSEG_OFFLINE=1 forbids downloading it (from {url}); download it "
            f"elsewhere and put it at {hand_path(file)}, or unset FCNSEG_OFFLINE"
        )
    import pooch

    folder.mkdir(parents=True, exist_ok=True)
    mirrored = url != file.url
    fetch = _drive(file, reserve) if file.drive_id and not mirrored else _http(file, reserve)
    log.info("downloading %s (%s) from %s", file.name, _size(file.size_mb), url)
    start = time.perf_counter()
    try:
        with _quiet_pooch():
            path = Path(pooch.retrieve(url, _pooch_hash(file.checksum), file.name, folder, downloader=fetch))
    except _Failure as e:
        raise failure(file, url, str(e)) from None
    except ValueError as e:  # pooch: the checksum does not match (the temporary file is already deleted)
        raise failure(file, url, _mismatch(str(e))) from None
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise failure(file, url, f"the disk of {folder} is full; free space or set FCNSEG_HOME elsewhere") from None
        raise failure(file, url, f"{e.strerror or e} ({e.filename or folder})") from None
    _check_prefix(path, file, url)
    log.info("downloaded %s in %.1f s (%s)", file.name, time.perf_counter() - start, _size(path.stat().st_size / 2**20))
    return path


def _size(mb: float | None) -> str:
    return "size unknown" if mb is None else (f"{mb / 1024:.1f} GB" if mb >= 1024 else f"{mb:.0f} MB")


def _mismatch(message: str) -> str:
    """pooch's checksum message, shortened: ``SHA1 … does not match the known hash: expected X but got Y``."""
    found = re.search(r"^(\w+) hash.*expected (\S+) but got (\S+?)\.", message)
    if not found:
        return f"checksum mismatch ({message.splitlines()[0]})"
    alg, expected, got = found.groups()
    return f"its {alg} is {got}, the published one is {expected.split(':')[-1]} (a damaged or different file)"


def _reason(e: BaseException) -> str:
    """A short reason for a network error (``[Errno 111] Connection refused`` → ``connection refused``)."""
    text = str(e)
    found = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    if found:
        why = found.group(1).strip().rstrip(".").lower()
        name_lookup = "name" in why or "resolution" in why or "nodename" in why  # DNS: no network, or a wrong name
        hint = "no network here, or a misspelt host" if name_lookup else "is the server up?"
        return f"cannot connect: {why} ({hint})"
    if "timed out" in text.lower():
        return "the server did not answer in time"
    return f"cannot connect ({type(e).__name__})"


def _check_space(folder: Path, total: int, reserve: float) -> None:
    free = shutil.disk_usage(folder).free
    if free < total * reserve:
        need = total * reserve / 2**20
        raise _Failure(
            f"needs about {need:.0f} MB free in {folder} (the file{' and its converted copy' if reserve > 1 else ''}), "
            f"there are {free / 2**20:.0f} MB; free space or set FCNSEG_HOME to a larger disk"
        )


def _http(file: WeightFile, reserve: float) -> Callable[..., None]:
    """A pooch downloader: ``requests`` streaming with a progress bar, resumed with ``Range`` when a transfer drops."""

    def fetch(url: str, output_file: Any, pooch_obj: Any = None, check_only: bool = False) -> None:
        import requests

        out = Path(output_file)
        done, total, last = 0, None, ""
        with requests.Session() as session, _progress(file.name) as bar:
            for attempt in range(ATTEMPTS):
                if attempt:
                    time.sleep(0.2 * attempt)
                headers = {"Accept-Encoding": "identity"}  # the bytes as published: sizes and checksums hold
                if done:
                    headers["Range"] = f"bytes={done}-"
                try:
                    with session.get(url, stream=True, timeout=TIMEOUT, headers=headers) as r:
                        if r.status_code >= 400:
                            raise _Failure(f"HTTP {r.status_code} {r.reason or ''}".strip())
                        if not (done and r.status_code == 206):  # a fresh start (no Range support: from zero)
                            done = 0
                            bar.reset()
                        total = _total(r, done)
                        if total is not None:
                            _check_space(out.parent, total - done, reserve)
                            bar.total = total
                        with open(out, "ab" if done else "wb") as f:
                            for chunk in r.iter_content(_CHUNK):
                                f.write(chunk)
                                done += len(chunk)
                                bar.update(len(chunk))
                    if total is None or done == total:
                        return
                    last = f"the transfer stopped at {done} of {total} bytes"
                except (requests.exceptions.ChunkedEncodingError, requests.exceptions.Timeout) as e:
                    last = f"the transfer broke off at {done} of {total or '?'} bytes ({type(e).__name__})"
                except requests.exceptions.ConnectionError as e:
                    if not done:
                        raise _Failure(_reason(e)) from None
                    last = f"the connection dropped at {done} of {total or '?'} bytes"
                except requests.exceptions.RequestException as e:
                    raise _Failure(f"{type(e).__name__}: {e}") from None
        raise _Failure(f"{last} ({ATTEMPTS} tries; the server sent a truncated file)")

    return fetch


def _total(response: Any, done: int) -> int | None:
    """The whole file's size from ``Content-Range`` (a resumed transfer) or ``Content-Length``."""
    content_range = response.headers.get("Content-Range", "")
    if response.status_code == 206 and "/" in content_range:
        size = content_range.rsplit("/", 1)[1]
        return int(size) if size.isdigit() else None
    length = response.headers.get("Content-Length")
    return done + int(length) if length and length.isdigit() else None


@contextlib.contextmanager
def _progress(label: str) -> Iterator[Any]:
    """A byte progress bar on stderr (only on a terminal: logs and pipes get the start and end lines)."""
    from tqdm.auto import tqdm

    bar = tqdm(desc=label, unit="B", unit_scale=True, unit_divisor=1024, disable=None, file=sys.stderr, leave=False)
    try:
        yield bar
    finally:
        bar.close()


def _drive(file: WeightFile, reserve: float) -> Callable[..., None]:
    """A pooch downloader for Google Drive files (``gdown``: Drive's confirmation page, retries)."""

    def fetch(url: str, output_file: Any, pooch_obj: Any = None, check_only: bool = False) -> None:
        try:
            import gdown
            from gdown.exceptions import DownloadError
        except ImportError:
            raise _Failure("Google Drive files need gdown: pip install 'fcnseg[gdrive]'") from None
        if file.size_mb:
            _check_space(Path(output_file).parent, int(file.size_mb * 2**20), reserve)
        try:
            gdown.download(id=file.drive_id, output=str(output_file), quiet=not sys.stderr.isatty(), retries=2)
        except DownloadError as e:
            raise _Failure(f"Google Drive: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
        except Exception as e:  # requests' and gdown's own network errors
            raise _Failure(_reason(e)) from None

    return fetch
