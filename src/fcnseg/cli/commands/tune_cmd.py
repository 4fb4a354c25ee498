"""``fcnseg tune --checkpoint CKPT [--sizes 500x375 …] [--engines …]``: measure the engines now, keep the decisions.

``--engine auto`` builds another engine only when a job's own images repay it; ``tune`` pays that cost up front
(every eligible engine built, held to the accuracy guard and timed against PyTorch at each size), so that every
later ``predict``, ``eval`` or ``serve`` of the checkpoint on this machine starts on the fastest engine.
"""

from __future__ import annotations

import argparse
import re

from . import COMMANDS
from ._common import add_device_arg, add_int8_args, add_model_args, device_of, spec_of


def size(text: str) -> tuple[int, int]:
    """``"500x375"`` (width × height, as image sizes are written) → ``(375, 500)`` (height, width)."""
    match = re.fullmatch(r"(\d{1,5})[x×](\d{1,5})", text.strip())
    if not match or not all(0 < int(v) <= 16384 for v in match.groups()):
        raise argparse.ArgumentTypeError(f"{text!r}: expected WIDTHxHEIGHT, each 1..16384 (e.g. 500x375)")
    w, h = (int(v) for v in match.groups())
    return h, w


def register(sub: argparse._SubParsersAction) -> None:
    from ...inference.engines import ENGINES

    p = sub.add_parser("tune", help=COMMANDS["tune"][1])
    add_model_args(p)
    p.add_argument(
        "--sizes",
        type=size,
        nargs="+",
        default=[(375, 500)],
        metavar="WxH",
        help="image sizes to decide for, WIDTHxHEIGHT (default 500x375)",
    )
    p.add_argument(
        "--engines",
        nargs="+",
        choices=[e for e in ENGINES if e != "torch"],
        metavar="ENGINE",
        help=f"the engines to try (default: every eligible one of {', '.join(ENGINES)})",
    )
    add_device_arg(p, default="cpu")
    add_int8_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from ...inference.predictor import Segmenter, SegmenterOptions

    options = SegmenterOptions(
        device=str(device_of(args)),
        engine="auto",
        calibration=args.calibration,
        calibration_count=args.calibration_count,
    )
    seg = Segmenter(spec_of(args), **asdict(options))
    for decision in seg.engine.tune(list(args.sizes), args.engines):
        h, w = decision.measured_at
        times = ", ".join(f"{k} {v:.3f}s" for k, v in sorted(decision.seconds.items(), key=lambda kv: kv[1]))
        print(f"{w}x{h}: {decision.engine} ({times})")
        for engine, why in decision.skipped.items():
            print(f"  {engine}: not used: {why}")
    print(f"decisions kept in {seg.engine.store.root if seg.engine.store else 'this process only (no model file)'}")
    return 0
