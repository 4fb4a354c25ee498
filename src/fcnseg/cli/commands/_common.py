"""Options shared by commands that take a model: ``--checkpoint CKPT`` or ``--model NAME --weights FILE``."""

from __future__ import annotations

import argparse
import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ...preprocessing import PRESETS


def number_in(lo: float, hi: float, *, kind: type = float, open_low: bool = False) -> Any:
    """An argparse ``type`` accepting ``kind`` values in [lo, hi] (or (lo, hi] with ``open_low``)."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if value != value or not (lo <= value <= hi) or (open_low and value == lo):  # value != value: NaN
            low = f"> {lo:g}" if open_low else f">= {lo:g}"
            raise argparse.ArgumentTypeError(f"{text!r}: expected a value {low} and <= {hi:g}")
        return value

    parse.__name__ = kind.__name__
    return parse


#: 0–1 opacities, positive scales, TCP ports, counts
FRACTION = number_in(0.0, 1.0)
SCALE = number_in(0.0, 16.0, open_low=True)
PORT = number_in(0, 65535, kind=int)
COUNT = number_in(1, 1e9, kind=int)
NON_NEGATIVE = number_in(0, 1e9, kind=int)


def add_device_arg(p: argparse.ArgumentParser, default: str = "auto") -> None:
    """``--device``: auto (CUDA when present), cpu, cuda or cuda:N; checked when the command runs."""
    p.add_argument(
        "--device", default=default, help=f"auto (CUDA when present), cpu, cuda or cuda:N (default {default})"
    )


def add_engine_arg(p: argparse.ArgumentParser) -> None:
    """``--engine``: auto (PyTorch, or another engine when the work repays building it) or one forced engine."""
    from ...inference.engines import ENGINES

    forced = "; ".join(f"{e.name} ({e.precision}: {e.summary})" for e in ENGINES.values())
    p.add_argument(
        "--engine",
        choices=["auto", *ENGINES],
        default=None,
        metavar="ENGINE",
        help="auto (default; FCNSEG_ENGINE overrides): PyTorch at once, another engine only when this job's "
        f"images repay building it (cached in FCNSEG_HOME); or force one: {forced}",
    )


def device_of(args: argparse.Namespace) -> Any:
    """The ``torch.device`` of ``--device`` (under torchrun with CUDA: this local rank's ``cuda:LOCAL_RANK``)."""
    from ...runtime.hardware import local_device, world_size

    return local_device(args.device, world_size())


def add_model_args(p: argparse.ArgumentParser, checkpoint_help: str = "an fcnseg .safetensors checkpoint") -> None:
    """``--checkpoint CKPT``, or ``--model NAME --weights FILE`` (with ``--num-classes``, ``--preprocessing``)."""
    g = p.add_argument_group("model (a checkpoint, or a registry name with pretrained weights or a weights file)")
    g.add_argument("--checkpoint", help=f"{checkpoint_help} (default: the quick start's {DEMO_CHECKPOINT})")
    g.add_argument("--model", help="registry name (fcnseg list), with --weights")
    g.add_argument(
        "--weights",
        help="pretrained weights: a tag of --model (voc), a full name (fcn8s_vgg16.voc; see 'fcnseg weights'), "
        "hf://OWNER/NAME[@REVISION]; fetched, checked and cached on first use; or a .safetensors or state-dict "
        "file (e.g. from 'fcnseg convert')",
    )
    g.add_argument("--num-classes", type=COUNT, help="with --model; default: read from the weights")
    g.add_argument(
        "--preprocessing",
        choices=sorted(PRESETS),
        default=None,
        help="with --model: the weights' input convention (default caffe_voc)",
    )


#: what a model-taking command opens when it is given no model: the quick start's (``fcnseg demo``'s) model
DEMO_CHECKPOINT = Path("runs/demo/checkpoints/best.safetensors")


def spec_of(args: argparse.Namespace) -> Any:
    """The :class:`~fcnseg.runtime.model_source.ModelSpec` the command line names; registry and Hub weights are
    fetched and converted now (once: later runs read the cache) and named by their cached checkpoint. None named:
    the quick start's model (as ``serve`` does), or a one-line error saying how to get one."""
    from ...errors import ConfigError
    from ...runtime.model_source import ModelSpec
    from ...weights.resolve import resolve_spec

    if not (args.checkpoint or args.model or args.weights):
        if not DEMO_CHECKPOINT.is_file():
            raise ConfigError(
                f"no --checkpoint given, and the quick start's model {DEMO_CHECKPOINT} is not here: run `fcnseg "
                "demo` first (it trains one in a few minutes), pass --checkpoint CKPT.safetensors, or name pretrained "
                "weights (--weights fcn8s_vgg16.voc; list: fcnseg weights)"
            )
        args.checkpoint = str(DEMO_CHECKPOINT)
        logging.getLogger("fcnseg").info("no --checkpoint given: the quick start's model %s", DEMO_CHECKPOINT)
    return resolve_spec(
        ModelSpec(
            checkpoint=args.checkpoint,
            model=args.model,
            weights=args.weights,
            num_classes=args.num_classes,
            preprocessing=args.preprocessing,
        )
    )


def load_model_args(args: argparse.Namespace) -> Any:
    """The model named by the command line, with its metadata (synthesised for bare weights), and its file."""
    from ...runtime.model_source import open_model

    return open_model(spec_of(args))


def add_int8_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("int8 (onnxruntime static quantization)")
    g.add_argument(
        "--calibration",
        help="folder of images to calibrate int8 activations on (default: the checkpoint's training data)",
    )
    g.add_argument(
        "--num-calibration-images",
        dest="calibration_count",
        type=COUNT,
        default=32,
        help="calibration images (default 32)",
    )


def calibration_images(args: argparse.Namespace, info: Any) -> list:
    """Preprocessed calibration tensors: ``--calibration DIR``, or the checkpoint's training set (8 images for
    commands without ``--num-calibration-images``)."""
    from ...runtime.calibration import calibration_images as images

    return images(info, getattr(args, "calibration", None), getattr(args, "calibration_count", 8))


def add_overwrite_arg(p: argparse.ArgumentParser, what: str) -> None:
    """``--overwrite``: write over ``what`` (files fcnseg did not write, an earlier output); never over an input."""
    p.add_argument("--overwrite", action="store_true", help=f"write over {what} (never over an input)")


@contextlib.contextmanager
def experiment_folder(
    out: str, kind: str, *, overwrite: bool, markers: tuple[str, ...] = (), kin: tuple[str, ...] = ()
) -> Iterator[None]:
    """The run folder of ``fcnseg demo`` / ``experiment`` claimed for the block: new, empty, or one this ``kind`` made
    (it reuses and retrains its own runs); else refused unless ``overwrite``. A folder holding one of ``markers``
    (what this kind writes there, e.g. ``paper.json``) was made by it before the folder ledger existed, and counts
    as its own; so does one made by a kind of ``kin`` (same run layout). A folder the claim made is removed again if
    the command fails before writing into it."""
    from pathlib import Path

    from ...writes import LEDGER, Ledger, claim_folder, discard_if_empty

    folder = Path(out)
    if not (folder / LEDGER).exists() and any((folder / m).is_file() for m in markers):
        Ledger(folder).mark_owner(kind)
    ledger = claim_folder(folder, kind=kind, overwrite=overwrite, fresh=True, reuse=True, kin=kin)
    try:
        yield
    except BaseException:
        discard_if_empty(ledger)
        raise
