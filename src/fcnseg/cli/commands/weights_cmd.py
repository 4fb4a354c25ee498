"""``fcnseg weights [PATTERN] [--fetch | --remove] [--json]``: the pretrained weights registry and its cache."""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
from typing import Any

from . import COMMANDS

_CLASS_SETS = {
    "voc": "PASCAL VOC",
    "siftflow": "SIFT Flow",
    "nyud40": "NYUDv2",
    "context59": "PASCAL-Context",
    "imagenet": "ImageNet",
}
_SHORT = {
    "mean_iu": "mean IU",
    "pixel_accuracy": "pixel acc",
    "mean_accuracy": "mean acc",
    "fw_iu": "f.w. IU",
    "geo_accuracy": "geo acc",
    "acc@1": "top-1",
    "acc@5": "top-5",
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help=COMMANDS["weights"][1])
    p.add_argument(
        "pattern",
        nargs="?",
        help="only these: a full name (fcn8s_vgg16.voc), a glob ('fcn8s*'), a model or a tag (voc)",
    )
    action = p.add_mutually_exclusive_group()
    action.add_argument(
        "--fetch", action="store_true", help="download, check and convert them now (e.g. before going offline)"
    )
    action.add_argument("--remove", action="store_true", help="delete them from the cache (FCNSEG_HOME/weights)")
    p.add_argument("--json", action="store_true", help="one JSON record per entry instead of the table")
    p.set_defaults(func=run)


def _select(pattern: str | None) -> list[Any]:
    from ...errors import ModelError
    from ...weights.table import list_weights

    entries = list_weights()
    if pattern is None:
        return entries
    chosen = [w for w in entries if fnmatch.fnmatch(w.name, pattern) or pattern in (w.model, w.tag)]
    if not chosen:
        raise ModelError(f"no registered weights match {pattern!r} (fcnseg weights lists them all)")
    return chosen


def run(args: argparse.Namespace) -> int:
    from ...weights.cache import entry_dir, is_cached, remove
    from ...weights.resolve import fetch_weights

    entries = _select(args.pattern)
    if args.fetch:
        for entry in entries:
            print(f"{entry.name}: {fetch_weights(entry)}")
        return 0
    if args.remove:
        for entry in entries:
            print(f"{entry.name}: {'removed' if remove(entry) else 'was not cached'}")
        return 0
    if args.json:
        for entry in entries:
            record = {**entry.describe(), "cached": is_cached(entry), "cache": str(entry_dir(entry))}
            print(json.dumps(record, ensure_ascii=False))
        return 0
    _table(entries, is_cached)
    if len(entries) == 1:
        _details(entries[0], entry_dir(entries[0]))
    return 0


def _classes(entry: Any) -> str:
    if entry.classes == "imagenet":
        return "1000 ImageNet"
    count = len(entry.class_names())
    extra = "+3 geo" if entry.classes == "siftflow" else ""
    return f"{count}{extra} {_CLASS_SETS.get(entry.classes, entry.classes)}"


def _source(entry: Any) -> str:
    file = entry.source_file()
    kind = (file.checksum or "").split(":", 1)[0].replace("sha256-prefix", "sha256 prefix") or "pinned on first use"
    return f"{file.host} ({kind})"


def _metrics(entry: Any) -> str:
    published = entry.published()
    return (
        ", ".join(
            f"{_SHORT.get(k, k)} {v:.1f}" if round(v, 1) == v else f"{_SHORT.get(k, k)} {v:g}"
            for k, v in published.items()
        )
        or "-"
    )


def _size(entry: Any) -> str:
    mb = entry.size_mb()
    return "?" if mb is None else f"{mb:.0f} MB"


def _table(entries: list[Any], is_cached: Any) -> None:
    header = ("model", "tag", "classes", "size", "source (checksum)", "published (%)", "cached")
    rows = [
        (w.model, w.tag, _classes(w), _size(w), _source(w), _metrics(w), "yes" if is_cached(w) else "no")
        for w in entries
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    from ...home import home, offline
    from ...weights.fetch import MIRROR_ENV

    mirror = os.environ.get(MIRROR_ENV, "").strip()
    where = f"from the mirror {mirror} ({MIRROR_ENV})" if mirror else "from the sources above"
    state = "offline (FCNSEG_OFFLINE=1): cached weights only" if offline() else f"first use downloads them {where}"
    count = f"{len(rows)} entr{'y' if len(rows) == 1 else 'ies'}"
    print(f"\n{count}; cache {home() / 'weights'}; {state}. Use: --model MODEL --weights TAG, or MODEL.TAG")


def _details(entry: Any, folder: Any) -> None:
    file = entry.source_file()
    print(f"\n{entry.name}:")
    for label, value in (
        ("file", f"{file.name} ({file.url})"),
        ("checksum", file.checksum or "none published: size and structure checked, SHA-256 pinned on first use"),
        ("preprocessing", entry.preprocessing),
        ("metrics from", f"{entry.metrics_source or '-'} on {entry.dataset or '-'}"),
        ("licence", entry.licence or "-"),
        ("note", entry.note or "-"),
        ("cache", str(folder)),
    ):
        print(f"  {label + ':':15} {value}")
