"""Reading the files fcnseg is given: regular files only, bounded in size, errors that name the file.

Every file fcnseg reads by name (configs, class lists, split lists, label maps, annotation JSON, the predict
manifest, the records under ``FCNSEG_HOME``, weights) is opened by :func:`open_regular`: it opens without
blocking (``O_NONBLOCK``, so a FIFO named ``config.yaml`` opens at once instead of waiting for a writer), then
checks *the opened file* (``fstat``, so nothing can be swapped in between a check and the open) and refuses
anything that is not a regular file: a FIFO, a device, a socket or a folder. Images go through
:mod:`fcnseg.imageio`, which applies the same check. Appends (:func:`open_append`: manifests, ledgers) refuse a
FIFO in the same way, and :func:`folder_lock` gives one writer a folder at a time.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO, BinaryIO

from .errors import DataError, FCNError, printable

__all__ = [
    "LOCK",
    "check_regular",
    "folder_lock",
    "kind_of",
    "open_append",
    "open_regular",
    "read_bytes",
    "read_text",
]

#: the lock file of an output folder (``flock``; holds the writer's pid)
LOCK = ".lock"

_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


def kind_of(mode: int) -> str:
    """What a file of ``st_mode`` is, in words (for the refusal of anything but a regular file)."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _a(what: str) -> str:
    return f"{'an' if what[:1].lower() in 'aeiou' else 'a'} {what}"


def _refusal(path: str | os.PathLike, what: str, error: type[FCNError], e: OSError) -> FCNError:
    if isinstance(e, FileNotFoundError):
        return error(f"{path}: {what} not found")
    return error(f"{path}: cannot read {what} ({e.strerror or e})")


def check_regular(path: str | os.PathLike, *, what: str = "file", error: type[FCNError] = DataError) -> Path:
    """``path`` if it names a regular file (symlinks followed); else ``error`` naming it and what it is."""
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        raise _refusal(path, what, error, e) from None
    if not stat.S_ISREG(mode):
        raise error(f"{path}: {kind_of(mode)}, not {_a(what)}")
    return Path(path)


def open_regular(path: str | os.PathLike, *, what: str = "file", error: type[FCNError] = DataError) -> BinaryIO:
    """``path`` opened for binary reading, if it is a regular file; never blocks on a FIFO or a device.

    Raises:
        FCNError (``error``): missing, unreadable, or not a regular file; the message names ``path``.
    """
    try:
        fd = os.open(path, os.O_RDONLY | _NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
    except OSError as e:
        raise _refusal(path, what, error, e) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise error(f"{path}: {kind_of(mode)}, not {_a(what)}")
        if _NONBLOCK:
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(
    path: str | os.PathLike, *, limit: int | None = None, what: str = "file", error: type[FCNError] = DataError
) -> bytes:
    """The bytes of regular file ``path``; more than ``limit`` bytes is refused before they are read."""
    with open_regular(path, what=what, error=error) as f:
        size = os.fstat(f.fileno()).st_size
        if limit is not None and size > limit:
            raise error(f"{path}: {size} bytes; {_a(what)} is at most {limit} bytes")
        try:
            data = f.read() if limit is None else f.read(min(size, limit) + 1)  # never a buffer of the limit
        except OSError as e:
            raise _refusal(path, what, error, e) from None
    if limit is not None and len(data) > limit:  # grew while being read
        raise error(f"{path}: more than {limit} bytes; {_a(what)} is at most {limit} bytes")
    return data


def read_text(
    path: str | os.PathLike, *, limit: int | None = None, what: str = "file", error: type[FCNError] = DataError
) -> str:
    """The UTF-8 text of regular file ``path`` (see :func:`read_bytes`); other encodings are refused."""
    data = read_bytes(path, limit=limit, what=what, error=error)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise error(f"{path}: {what} is not UTF-8 text (byte {e.start}: {e.reason})") from None


def open_append(path: str | os.PathLike) -> IO[str]:
    """``path`` opened to append UTF-8 text, created if missing; a FIFO or device there is refused, never waited on.

    Raises:
        DataError: ``path`` is not a regular file.
    """
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as e:
        if e.errno == errno.ENXIO:  # a FIFO without a reader: O_NONBLOCK refuses to wait for one
            raise DataError(f"{printable(path)}: a FIFO, not a file fcnseg can append to") from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise DataError(f"{printable(path)}: {kind_of(mode)}, not a file fcnseg can append to")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "a", encoding="utf-8")
    except BaseException:
        os.close(fd)
        raise


@contextlib.contextmanager
def folder_lock(
    folder: str | os.PathLike, *, holder: str = "fcnseg run", error: type[FCNError] = DataError
) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``folder/.lock`` for the block (released by the OS if the process dies).

    Raises:
        FCNError (``error``): another process holds the folder (its pid is named).
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: no locking
        yield
        return
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            raise error(
                f"{printable(folder)}: another {holder} (pid {owner}) is writing this folder; wait for it, stop it, "
                "or choose another folder"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
