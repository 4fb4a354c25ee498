"""``fcnseg data check ROOT --dataset NAME``, ``fcnseg data synth --out DIR`` and ``fcnseg data import labelme``."""

from __future__ import annotations

import argparse
import warnings
from typing import Any

from ...errors import ConfigError, DataWarning
from . import COMMANDS
from ._common import COUNT, NON_NEGATIVE


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help=COMMANDS["data"][1])
    dsub = p.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")
    c = dsub.add_parser("check", help="validate every sample; print counts, class frequencies and warnings")
    c.add_argument("root", help="the dataset's folder")
    c.add_argument(
        "--dataset",
        required=True,
        metavar="NAME",
        help="which dataset format ROOT holds: voc, sbd, siftflow, nyudv2, pascal_context, cityscapes, "
        "ade20k, coco, folder or synthetic",
    )
    c.add_argument("--split", default="train", help="the split to check (default train)")
    c.add_argument(
        "--option",
        "-o",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="dataset option (YAML value), e.g. -o binary=true, -o annotations=result.json; repeatable",
    )
    c.set_defaults(func=run_check)
    s = dsub.add_parser("synth", help="write SyntheticShapes to disk (VOC layout, or a plain folder dataset)")
    s.add_argument("--out", required=True, help="a new folder")
    s.add_argument("--layout", choices=["voc", "folder"], default="voc", help="folder: OUT/{train,val}/{images,masks}")
    s.add_argument("--num-images", type=COUNT, default=200, help="scenes in all (default 200; a fifth of them for val)")
    s.add_argument("--size", type=COUNT, default=128, help="scene side in pixels (default 128)")
    s.add_argument("--seed", type=NON_NEGATIVE, default=0, help="random seed of the scenes (default 0)")
    s.add_argument(
        "--overwrite",
        action="store_true",
        help="write into a folder that is not empty (an earlier synth's files it no longer writes are removed)",
    )
    s.set_defaults(func=run_synth)
    b = dsub.add_parser(
        "bound",
        help="upper bounds of coarse output: mean IU of the ground truth taken down to "
        "each output stride and back (the paper's Appendix A)",
    )
    b.add_argument("root", help="the dataset's folder (ignored by synthetic)")
    b.add_argument(
        "--dataset",
        required=True,
        metavar="NAME",
        help="which dataset format ROOT holds: voc, sbd, siftflow, nyudv2, pascal_context, cityscapes, "
        "ade20k, coco, folder or synthetic",
    )
    b.add_argument("--split", default="val", help="the split to bound (default val)")
    b.add_argument("--strides", type=COUNT, nargs="+", default=[32, 16, 8], help="output strides (default 32 16 8)")
    b.add_argument(
        "--method",
        choices=("bilinear", "nearest"),
        default="bilinear",
        help="bilinear (default: class fractions per cell, upsampled bilinearly, as an FCN does) or "
        "nearest (majority per cell, repeated)",
    )
    b.add_argument("--max-images", type=COUNT, help="bound only the first N label maps (default: all)")
    b.add_argument(
        "--option",
        "-o",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="dataset option (YAML value), e.g. -o n=200; repeatable",
    )
    b.add_argument("--json", help="also write the results as JSON (undefined numbers as null)")
    b.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    b.set_defaults(func=run_bound)
    i = dsub.add_parser("import", help="convert annotation-tool files into the folder dataset")
    isub = i.add_subparsers(dest="import_format", required=True, metavar="FORMAT")
    lm = isub.add_parser("labelme", help="labelme JSON files → OUT/{images,masks,class_names.txt}")
    lm.add_argument("src", help="a folder of labelme .json files (searched recursively) or one file")
    lm.add_argument("--labels", required=True, help="labels.txt: __ignore__, _background_, then one class a line")
    lm.add_argument("--out", required=True, help="a new folder")
    lm.add_argument("--overwrite", action="store_true", help="write into a folder that is not empty")
    lm.set_defaults(func=run_import_labelme)


def parse_options(pairs: list[str]) -> dict[str, Any]:
    """``["k=v", …]`` → ``{k: yaml(v)}``; a malformed pair is a one-line error."""
    from ...yaml_safe import load_yaml

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--option {pair!r}: expected KEY=VALUE")
        out[key.strip()] = load_yaml(value, f"--option {pair!r}") if value else ""
    return out


def run_check(args: argparse.Namespace) -> int:
    from ...data import get_dataset
    from ...data.check import check_dataset, class_names

    try:
        with warnings.catch_warnings():  # the report below says the same, with the other warnings
            warnings.simplefilter("ignore", DataWarning)
            ds = get_dataset(args.dataset, args.root, args.split, **parse_options(args.option))
    except TypeError as e:
        if "unexpected keyword argument" not in str(e):
            raise
        raise ConfigError(f"--option: the {args.dataset} dataset does not take it ({e})") from None
    report = check_dataset(ds)
    print(
        f"{args.dataset} {args.split}: {report.samples}/{len(ds)} samples readable, {len(report.problems)} problem(s)"
    )
    from ...errors import printable

    for line in report.problems:  # one line each: a newline in a file name is escaped, never a line of its own
        print(f"  problem: {printable(line)}")
    for line in report.warnings:
        print(f"  warning: {printable(line)}")
    names = class_names(ds)
    for task, counts in report.class_pixels.items():
        freq = counts / max(1, counts.sum())
        print(f"class pixel frequencies{f' ({task})' if task else ''}:")
        labels = names if task == next(iter(ds.head_classes), "") else ds.head_classes.get(task, [])
        for i, (n, f) in enumerate(zip(counts, freq, strict=True)):
            print(f"  {i:3d} {labels[i] if i < len(labels) else '?':20s} {int(n):12d} {f:8.4f}")
    print(f"ignored (255) pixels: {report.ignored_pixels}")
    if "" in report.class_pixels and report.class_pixels[""].sum():
        from ...train.class_weights import frequency_weights

        w = frequency_weights(report.frequencies(), "inverse_frequency")
        print("train.class_weights: inverse_frequency would give [" + ", ".join(f"{v:.3g}" for v in w) + "]")
    return 0 if report.ok else 1


def run_synth(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ...data.check import write_folder_layout, write_voc_layout
    from ...data.synthetic import SHAPE_CLASSES
    from ...errors import printable
    from ...io import atomic_write
    from ...writes import claim_folder, staged

    out = Path(args.out)
    ledger = claim_folder(out, kind="dataset", overwrite=args.overwrite, fresh=True, reuse=False)
    # written whole into a hidden folder beside OUT, then moved in: a full disk part way leaves OUT as it was
    with staged(ledger, overwrite=args.overwrite, replace_previous=ledger.owner == "dataset") as stage:
        if args.layout == "folder":
            write_folder_layout(stage, n=args.num_images, size=args.size, seed=args.seed)
            for split in ("train", "val"):  # the class order, from the code: the folder dataset reads it back
                with atomic_write(stage / split / "class_names.txt", "w") as f:
                    f.write("".join(f"{name}\n" for name in SHAPE_CLASSES))
        else:
            write_voc_layout(stage, n=args.num_images, size=args.size, seed=args.seed)
    shown = printable(out)
    if args.layout == "folder":
        print(
            f"wrote {args.num_images} synthetic images as a folder dataset under "
            f"{shown}/{{train,val}}/{{images,masks}}, "
            f"class names in {shown}/{{train,val}}/class_names.txt ({', '.join(SHAPE_CLASSES)})"
        )
        print(f"try: fcnseg data check {shown} --dataset folder --split train")
        return 0
    print(f"wrote {args.num_images} synthetic images in VOC layout under {shown / Path('VOCdevkit/VOC2012')}")
    print(f"try: fcnseg data check {shown} --dataset voc")
    return 0


def run_import_labelme(args: argparse.Namespace) -> int:
    from ...data.labelme import import_labelme
    from ...errors import printable

    n, names = import_labelme(args.src, args.labels, args.out, overwrite=args.overwrite)
    shown = printable(args.out)
    print(f"wrote {n} image(s) and mask(s) with {len(names)} classes ({printable(', '.join(names))}) under {shown}")
    print(f"try: fcnseg data check {shown} --dataset folder")
    return 0


def run_bound(args: argparse.Namespace) -> int:
    from ...data import get_dataset, upper_bounds

    """Print (and with ``--json`` write) the mean IU bound of each stride."""
    from ...io import write_json
    from ...writes import claim_file

    if args.json:
        read = [args.root] if args.dataset != "synthetic" else []  # the synthetic set ignores its root
        claim_file(args.json, inputs=read, overwrite=args.overwrite, option="--json")

    ds = get_dataset(args.dataset, args.root, args.split, **parse_options(args.option))
    n = min(len(ds), args.max_images or len(ds))
    first = lambda m: m[next(iter(m))] if isinstance(m, dict) else m  # noqa: E731  (multi-head: the first head)
    bounds = upper_bounds(
        (first(ds.load(i)[1]) for i in range(n)),
        ds.num_classes,
        args.strides,
        method=args.method,
        ignore_index=ds.ignore_index,
    )
    print(f"{args.dataset} {args.split}: {n} label maps, {ds.num_classes} classes, method {args.method}")
    print(f"{'stride':>6} {'pixel acc':>10} {'mean acc':>9} {'mean IU':>8} {'f.w. IU':>8}")
    for f, m in bounds.items():
        print(f"{f:>6} {m['pixel_accuracy']:10.4f} {m['mean_accuracy']:9.4f} {m['mean_iu']:8.4f} {m['fw_iu']:8.4f}")
    if args.json:  # a class absent from the set has no IU: null, never a bare NaN
        record = {"dataset": args.dataset, "split": args.split, "method": args.method, "images": n}
        write_json(args.json, {**record, "bounds": {str(f): m for f, m in bounds.items()}})
    return 0
