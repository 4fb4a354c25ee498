"""The one rule for every write: never over an input, never over a file fcnseg did not write.

Every command that writes resolves the real paths (symlinks followed) of what it reads and of where it writes,
and refuses an output that is, lies inside, or would replace an input (:func:`refuse_overlap`). An output folder
keeps a ledger, ``OUT/.fcnseg-written.jsonl``: which command made the folder, and each file fcnseg wrote there
with its size and modification time, claimed before it is written and recorded once it is whole. So

* a file at an output name that the ledger does not list is the user's: it is refused unless ``--overwrite``
  says otherwise (:func:`check_targets`);
* "already complete" means listed *and* unchanged since (:meth:`Ledger.whole`), not merely present;
* a run, dataset or export folder that already holds another run's or the user's files is refused unless
  ``--overwrite`` (or ``--resume``) says otherwise (:func:`claim_folder` with ``fresh=True``);
* a single output file that exists is replaced only with ``--overwrite`` (:func:`claim_file`).

:func:`folder_lock` (from :mod:`fcnseg.files`) gives one writer a folder at a time (a ``flock`` the OS releases if
the process dies).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from .errors import DataError, FCNError, printable
from .files import LOCK, folder_lock, open_append, read_bytes
from .json_safe import loads_json

__all__ = [
    "LEDGER",
    "LOCK",
    "Ledger",
    "check_targets",
    "claim_file",
    "claim_folder",
    "destination",
    "discard_if_empty",
    "folder_lock",
    "open_append",
    "real_path",
    "refuse_overlap",
    "staged",
]

#: the ledger of an output folder: the command that made it, and every file fcnseg wrote there
LEDGER = ".fcnseg-written.jsonl"
#: a ledger is a few dozen bytes per file written; beyond this it is not one
_MAX_LEDGER = 1 << 30


def real_path(path: str | os.PathLike) -> Path:
    """``path`` with every symlink followed and ``..`` resolved (it need not exist)."""
    return Path(os.path.realpath(path))


def destination(path: str | os.PathLike) -> Path:
    """The real path a write to ``path`` replaces: its folder's real path and its own name.

    Writes go through ``os.replace``, which replaces a symlink itself, not the file it points to.
    """
    path = Path(os.path.abspath(path))
    return real_path(path.parent) / path.name


def refuse_overlap(
    output: str | os.PathLike, inputs: Iterable[str | os.PathLike], *, option: str = "--out", folder: bool = False
) -> None:
    """Refuse an ``output`` (a folder with ``folder``, else a file) that is, or lies inside, one of ``inputs``.

    Paths are compared by their real paths, so a symlink to an input, an input reached through a symlink and an
    output under a symlinked parent are all seen for what they are.

    Raises:
        DataError: naming the option, the output and the input it would write over.
    """
    out = real_path(output) if folder else destination(output)
    for given in inputs:
        source = real_path(given)
        if source.is_dir() and (out == source or source in out.parents):
            raise DataError(
                f"{option} {printable(output)}: inside the input folder {printable(given)} (real path "
                f"{printable(source)}); the outputs would mix with the inputs. Choose a path outside it"
            )
        if out == source:
            raise DataError(
                f"{option} {printable(output)}: is the input {printable(given)} (real path {printable(source)}); "
                "it would be written over. Choose another path"
            )


class Ledger:
    """The ledger of output folder ``folder`` (``folder/.fcnseg-written.jsonl``): its maker and the files written.

    Entries are appended one JSON line at a time (thread- and process-safe appends); a line cut by a kill is
    ignored. :meth:`claim` names files before they are written (they are then fcnseg's even if the write never
    finished), :meth:`done` records them whole with their size and modification time.
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LEDGER
        self.owner: str | None = None
        self.files: dict[str, tuple[int, int] | None] = {}
        self.created = False  # claim_folder made the folder: it may remove it again while it holds nothing
        self._pending: str | None = None  # the maker, recorded with the first claim
        self._lock = threading.Lock()
        self._read()

    def _read(self) -> None:
        if not os.path.lexists(self.path):
            return
        text = read_bytes(self.path, limit=_MAX_LEDGER, what="fcnseg ledger").decode("utf-8", "replace")
        for line in text.splitlines():
            try:
                entry = loads_json(line, str(self.path))
            except FCNError:
                continue  # a line cut by a kill, or not fcnseg's (nesting bounded by json_safe)
            if isinstance(entry, dict):
                self._apply(entry)

    def _apply(self, entry: dict) -> None:
        if isinstance(entry.get("owner"), str) and self.owner is None:
            self.owner = entry["owner"]
        for rel in entry.get("claim", ()) if isinstance(entry.get("claim"), list) else ():
            if isinstance(rel, str):
                self.files.setdefault(rel, None)
        done = entry.get("done")
        for rel, mark in done.items() if isinstance(done, dict) else ():
            ok = isinstance(mark, list) and len(mark) == 2 and all(isinstance(v, int) for v in mark)
            self.files[rel] = (mark[0], mark[1]) if ok else None
        for rel in entry.get("forget", ()) if isinstance(entry.get("forget"), list) else ():
            self.files.pop(rel, None)

    def _append(self, entry: dict) -> None:
        line = json.dumps(entry, ensure_ascii=True) + "\n"
        if self._pending is not None and "owner" not in entry:  # the maker first, with the first file it writes
            line = json.dumps({"owner": self._pending}) + "\n" + line
            self._apply({"owner": self._pending})
            self._pending = None
        with self._lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            with open_append(self.path) as f:  # one write: appends of processes sharing a folder do not interleave
                os.write(f.fileno(), line.encode("ascii"))
            self._apply(entry)

    def mark_owner(self, kind: str, *, now: bool = True) -> None:
        """Record that ``kind`` (``predict``, ``train``, ``dataset`` …) made this folder, unless one already did;
        ``now=False``: with the first file claimed (a command refused before writing leaves no ledger behind)."""
        if self.owner is None and self._pending is None:
            if now:
                self._append({"owner": kind})
            else:
                self._pending = kind

    def owns(self, rel: str) -> bool:
        """Whether ``rel`` (relative to the folder, POSIX) is a file fcnseg claimed or wrote here."""
        return rel in self.files

    def whole(self, rel: str) -> bool:
        """Whether ``rel`` was written whole by fcnseg and is unchanged since (same size and modification time)."""
        mark = self.files.get(rel)
        if mark is None:
            return False
        try:
            st = os.lstat(self.folder / rel)
        except OSError:
            return False
        return stat.S_ISREG(st.st_mode) and (st.st_size, st.st_mtime_ns) == mark

    def claim(self, rels: Sequence[str]) -> None:
        """Name files about to be written (before their first byte, so a kill cannot orphan them)."""
        new = [r for r in rels if r not in self.files]
        if new:
            self._append({"claim": new})

    def done(self, rels: Sequence[str]) -> None:
        """Record files just written whole (their size and modification time as they are now)."""
        marks = {}
        for rel in rels:
            st = os.lstat(self.folder / rel)
            marks[rel] = [st.st_size, st.st_mtime_ns]
        if marks:
            self._append({"done": marks})

    def forget(self, rels: Sequence[str]) -> None:
        """Record that files were removed (or handed over to the user)."""
        gone = [r for r in rels if r in self.files]
        if gone:
            self._append({"forget": gone})

    def compact(self) -> None:
        """Rewrite the ledger as one entry per file (atomically); for the end of a run, with the folder locked."""
        from .io import atomic_write

        with self._lock, atomic_write(self.path, "w") as f:
            if self.owner is not None:
                f.write(json.dumps({"owner": self.owner}) + "\n")
            claimed = [r for r, m in self.files.items() if m is None]
            if claimed:
                f.write(json.dumps({"claim": claimed}, ensure_ascii=True) + "\n")
            done = {r: list(m) for r, m in self.files.items() if m is not None}
            if done:
                f.write(json.dumps({"done": done}, ensure_ascii=True) + "\n")


def _entries(folder: Path) -> list[str]:
    """The names in ``folder`` besides fcnseg's own bookkeeping (the ledger, the lock)."""
    return sorted(p.name for p in folder.iterdir() if p.name not in (LEDGER, LOCK))


def claim_folder(
    out: str | os.PathLike,
    *,
    kind: str,
    inputs: Iterable[str | os.PathLike] = (),
    overwrite: bool = False,
    fresh: bool = False,
    reuse: bool = True,
    option: str = "--out",
    kin: tuple[str, ...] = (),
) -> Ledger:
    """Claim output folder ``out`` for a ``kind`` of writer: created if missing, refused if it overlaps an input.
    ``kin``: other kinds whose folders this one reuses as its own (they share a layout).

    ``fresh`` (run, dataset and experiment folders): the folder must be new or empty, or one ``kind`` made before
    (with ``reuse``; the caller decides what to do with its previous contents); a folder holding anything else is
    refused unless ``overwrite``. Without ``fresh`` (predict, eval) files are checked one by one when written
    (:func:`check_targets`).

    Raises:
        DataError: ``out`` overlaps an input, or holds files fcnseg did not write (``fresh`` without ``overwrite``).
    """
    out = Path(out)
    refuse_overlap(out, inputs, option=option, folder=True)
    created = not os.path.lexists(out)
    out.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(out)
    ledger.created = created
    ours = ledger.owner == kind or (ledger.owner is not None and ledger.owner in kin)
    if fresh and not overwrite and not (ours and reuse):
        others = _entries(out)
        if others and ours:
            raise DataError(
                f"{option} {printable(out)}: holds the output of an earlier fcnseg {kind} ({len(others)} entries); "
                "add --overwrite to write it again, or choose a new folder"
            )
        if others:
            made = f" (made by fcnseg {ledger.owner})" if ledger.owner else ""
            raise DataError(
                f"{option} {printable(out)}: holds {len(others)} file(s) this command did not write{made}, e.g. "
                f"{printable(others[0])}; choose a new or empty folder, or add --overwrite to write into it anyway"
            )
    ledger.mark_owner(kind, now=fresh)
    return ledger


def check_targets(
    ledger: Ledger,
    rels: Iterable[str],
    *,
    inputs: dict[Path, str] | None = None,
    overwrite: bool = False,
    option: str = "--out",
) -> None:
    """Refuse writing ``rels`` into ``ledger``'s folder where one would replace an input (always) or a file fcnseg
    did not write there (unless ``overwrite``).

    ``inputs``: ``{real path: name as given}`` of everything the command reads.
    """
    inputs = inputs or {}
    for rel in rels:
        path = ledger.folder / rel
        dest = destination(path)
        if dest in inputs:
            raise DataError(
                f"{printable(path)}: would replace the input {printable(inputs[dest])}; choose another {option}"
            )
        if not overwrite and os.path.lexists(path) and not ledger.owns(rel):
            raise DataError(
                f"{printable(path)}: a file this command did not write (not in {LEDGER}); add --overwrite to "
                f"replace it, or choose another {option}"
            )


def claim_file(
    out: str | os.PathLike,
    *,
    inputs: Iterable[str | os.PathLike] = (),
    overwrite: bool = False,
    option: str = "--out",
    also: Sequence[str | os.PathLike] = (),
) -> Path:
    """Claim single output file ``out`` (and ``also``: files written beside it): never an input, nor inside an
    input folder; an existing file is replaced only with ``overwrite``.

    Raises:
        DataError: naming the option, the file and why.
    """
    inputs = list(inputs)
    for target in (out, *also):
        refuse_overlap(target, inputs, option=option)
        path = Path(target)
        if os.path.lexists(path):
            if os.path.isdir(path):
                raise DataError(f"{option} {printable(path)}: a folder; give a file name")
            if not overwrite:
                raise DataError(
                    f"{option} {printable(path)}: already exists; add --overwrite to replace it, or choose another name"
                )
    return Path(out)


def discard_if_empty(ledger: Ledger) -> bool:
    """Remove ``ledger``'s folder again if :func:`claim_folder` made it and nothing but the ledger (and a lock) is
    there: a command that failed before writing its first file leaves no trace. Returns whether it went."""
    if not ledger.created or _entries(ledger.folder):
        return False
    for name in (LEDGER, LOCK):
        with contextlib.suppress(FileNotFoundError):
            (ledger.folder / name).unlink()
    try:
        ledger.folder.rmdir()
    except OSError:
        return False
    return True


@contextlib.contextmanager
def staged(
    ledger: Ledger, *, inputs: dict[Path, str] | None = None, overwrite: bool = False, replace_previous: bool = False
) -> Iterator[Path]:
    """A hidden folder beside ``ledger``'s to write a whole set of files into; moved into place when the block
    ends without an error (each file recorded in the ledger), removed in every case.

    So a failure part way (a full disk, a bad input) leaves the output folder as it was. ``replace_previous``:
    files an earlier run recorded whole there, and that this one does not write again, are removed first.
    """
    folder = Path(os.path.abspath(ledger.folder))  # "." has no name: its parent's view of it has
    stage = folder.parent / f".{folder.name}.partial-{uuid.uuid4().hex[:8]}"
    stage.mkdir(parents=True)
    try:
        try:
            yield stage
        except BaseException:
            discard_if_empty(ledger)
            raise
        rels = [p.relative_to(stage).as_posix() for p in sorted(stage.rglob("*")) if not p.is_dir()]
        check_targets(ledger, rels, inputs=inputs, overwrite=overwrite)
        if replace_previous:
            stale = [r for r in list(ledger.files) if r not in set(rels) and ledger.whole(r)]
            for rel in stale:
                (ledger.folder / rel).unlink(missing_ok=True)
            ledger.forget(stale)
        ledger.claim(rels)
        for rel in rels:
            (ledger.folder / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(stage / rel, ledger.folder / rel)
        ledger.done(rels)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
