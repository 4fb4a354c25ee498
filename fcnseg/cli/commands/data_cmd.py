"""``fcnseg data check ROOT --dataset NAME`` and ``fcnseg data synth --out DIR``."""

from __future__ import annotations

import argparse

from ...data import get_dataset, list_datasets
from ...data.check import check_dataset, write_folder_layout, write_voc_layout


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="check a dataset on disk, or write the synthetic one")
    dsub = p.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")
    c = dsub.add_parser("check", help="validate every sample; print counts and class frequencies")
    c.add_argument("root")
    c.add_argument("--dataset", required=True, choices=list_datasets())
    c.add_argument("--split", default="train")
    c.set_defaults(func=run_check)
    s = dsub.add_parser("synth", help="write SyntheticShapes to disk (VOC layout, or a plain folder dataset)")
    s.add_argument("--out", required=True)
    s.add_argument("--layout", choices=["voc", "folder"], default="voc", help="folder: OUT/{train,val}/{images,masks}")
    s.add_argument("--n", type=int, default=200)
    s.add_argument("--size", type=int, default=128)
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=run_synth)


def run_check(args: argparse.Namespace) -> int:
    ds = get_dataset(args.dataset, args.root, args.split)
    report = check_dataset(ds)
    print(
        f"{args.dataset} {args.split}: {report.samples}/{len(ds)} samples readable, {len(report.problems)} problem(s)"
    )
    for line in report.problems:
        print(f"  problem: {line}")
    for task, counts in report.class_pixels.items():
        freq = counts / max(1, counts.sum())
        print(f"class pixel frequencies{f' ({task})' if task else ''}:")
        names = getattr(ds, "geometric_classes", ds.classes) if task == "geo" else ds.classes
        for i, (n, f) in enumerate(zip(counts, freq, strict=True)):
            print(f"  {i:3d} {names[i] if i < len(names) else '?':20s} {int(n):12d} {f:8.4f}")
    print(f"ignored (255) pixels: {report.ignored_pixels}")
    if "" in report.class_pixels and report.class_pixels[""].sum():
        from ...engine.class_weights import frequency_weights

        w = frequency_weights(report.frequencies(), "inverse_frequency")
        print("train.class_weights: inverse_frequency would give [" + ", ".join(f"{v:.3g}" for v in w) + "]")
    return 0 if report.ok else 1


def run_synth(args: argparse.Namespace) -> int:
    if args.layout == "folder":
        base = write_folder_layout(args.out, n=args.n, size=args.size, seed=args.seed)
        print(f"wrote {args.n} synthetic images as a folder dataset under {base}/{{train,val}}/{{images,masks}}")
        print(f"try: fcnseg data check {args.out} --dataset folder --split train")
        return 0
    base = write_voc_layout(args.out, n=args.n, size=args.size, seed=args.seed)
    print(f"wrote {args.n} synthetic images in VOC layout under {base}")
    print(f"try: fcnseg data check {args.out} --dataset voc")
    return 0
