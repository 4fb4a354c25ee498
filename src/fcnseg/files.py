"""Reading the files fcnseg is given: regular files only, bounded in size, errors that name the file.

Every file fcnseg reads by name (configs, class lists, split lists, label maps, annotation JSON, the predict
manifest, the records under ``FCNSEG_HOME``, weights) is opened by :func:`open_regular`: it opens without
blocking (``O_NONBLOCK``, so a FIFO named ``config.yaml`` opens at once instead of waiting for a writer), then
checks *the opened file* (``fstat``, so nothing can be swapped in between a check and the open) and refuses
anything that is not a regular file: a FIFO, a device, a socket or a folder. Images go through
:mod:`fcnseg.imageio`, which applies the same check.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from .errors import DataError, FCNError

__all__ = ["check_regular", "kind_of", "open_regular", "read_bytes", "read_text"]

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
            data = f.read() if limit is None else f.read(limit + 1)
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
