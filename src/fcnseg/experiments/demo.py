"""``fcnseg demo``: the paper in five minutes on a CPU.

The miniature experiment's pipeline (:mod:`fcnseg.experiments.miniature`) at a demo's size:

1. a VGG16-pattern classifier pretrained on object-framed synthetic images — shipped with fcnseg
   (:mod:`fcnseg.pretrained`, rebuilt bit for bit by ``fcnseg experiment classifier``) so the demo
   does not spend its minutes on it;
2. convolutionalized into FCN-32s and fine-tuned; FCN-16s from the FCN-32s, FCN-8s from the FCN-16s
   (the paper's staged training);
3. each net evaluated on held-out scenes (never trained on or selected on) with the paper's mean IU and
   boundary mean IU; a grid of examples (image | FCN-32s | FCN-16s | FCN-8s | truth), the learning
   curves, the FCN-8s's confusion matrix, ``metrics.json`` and a ``report.md`` that explains them.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from ..config import load_config
from ..data import SyntheticShapes
from ..errors import ConfigError
from ..io import write_json
from ..metrics import named
from ..pretrained import PREFIX, pretrained_path
from ..runtime import load_checkpoint, resolve_device
from ..train import fit, read_log
from .demo_report import write_outputs
from .heldout import evaluate_held_out
from .miniature.classifier import pretrain_classifier
from .scale import CLASSIFIER, CLASSIFIER_SCALE, DEMO, FINE_TUNE, Scale, overrides

__all__ = ["STAGES", "pretrain_demo_classifier", "run_demo", "table", "write_classifier"]

#: (key, registry name, label, initialised from, steps in units of ``seg_steps``): FCN-8s, the net the demo
#: ends with, gets the longest stage (held-out FCN-8s: 1600 / 1600 / 3200 steps 0.521; 1500 / 1500 / 4500 0.536
#: and 0.562 in two fp32 runs, 5 min 34 s on a quiet 2-core CPU; 0.528 in bf16, the AMX default: docs/results/demo.txt)
STAGES = (
    ("fcn32s", "fcn32s_vgg16", "FCN-32s", "classifier", 1),
    ("fcn16s", "fcn16s_vgg16", "FCN-16s", "fcn32s", 1),
    ("fcn8s", "fcn8s_vgg16", "FCN-8s", "fcn16s", 3),
)


def pretrain_demo_classifier(
    out: str | Path, *, scale: Scale = CLASSIFIER_SCALE, log: Callable[..., Any] = print
) -> Path:
    """Train the demo's classifier from scratch and write it as float16 safetensors to ``out``.

    Runs on the CPU with 2 threads whatever the machine, so that the same torch build on the same CPU
    type writes the same bytes (``fcnseg experiment classifier`` calls this; the shipped file came from it).
    """
    from ..runtime import load_state_dict_file

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            result = pretrain_classifier(scale, Path(tmp), torch.device("cpu"), log)
            state = load_state_dict_file(result["path"])
    finally:
        torch.set_num_threads(threads)
    return write_classifier(out, state, scale, result["val_accuracy"])


def write_classifier(out: str | Path, state: dict[str, torch.Tensor], scale: Scale, val_accuracy: float) -> Path:
    """``state`` as float16 safetensors with its recipe in one metadata key, written atomically."""
    from safetensors.torch import save_file

    out = Path(out)
    tensors = {k: v.half().contiguous() for k, v in sorted(state.items())}
    # one metadata key: safetensors writes several in a random order, which would change the bytes run to run
    meta = {
        "fcnseg": json.dumps(
            {
                "recipe": asdict(scale),
                "val_accuracy": round(val_accuracy, 4),
                "classes": list(SyntheticShapes.classes),
                "torch": torch.__version__,
            },
            sort_keys=True,
        )
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=out.parent, suffix=".tmp", delete=False) as f:
        tmp_path = Path(f.name)
    save_file(tensors, str(tmp_path), metadata=meta)
    tmp_path.replace(out)
    return out


def _classifier(spec: str | Path | None, scale: Scale, run_dir: Path, log: Callable[..., Any]) -> tuple[str, str]:
    """The ``backbone_weights`` spec to fine-tune from, and how it was obtained."""
    if spec is None or str(spec).startswith(PREFIX):
        name = str(spec or PREFIX + CLASSIFIER)
        return name, f"the shipped {pretrained_path(name).name}, rebuilt by `fcnseg experiment classifier`"
    if str(spec) == "train":
        log("  pretraining the classifier (no shipped one asked for) …")
        path = pretrain_demo_classifier(run_dir / "classifier.safetensors", scale=scale, log=log)
        return str(path), "pretrained in this run"
    if not Path(spec).is_file():
        raise ConfigError(f"--classifier {spec}: no such file (give a file, 'train', or {PREFIX}{CLASSIFIER})")
    return str(spec), f"the file {spec}"


def run_demo(
    out: str | Path = "runs/demo",
    *,
    scale: Scale = DEMO,
    device: str = "auto",
    classifier: str | Path | None = None,
    quiet: bool = False,
    log: Callable[..., Any] = print,
) -> dict[str, Any]:
    """Fine-tune FCN-32s → 16s → 8s from the pretrained classifier; evaluate, draw and report into ``out``.

    Returns what ``metrics.json`` holds: ``{"nets": {key: metrics}, "classes": …, "wall_s": …, …}``.
    ``out/checkpoints/best.safetensors`` is the final FCN-8s (``fcnseg predict``/``serve`` take it).
    """
    out = Path(out)
    dev = resolve_device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: no CUDA device is available here; use --device cpu")
    t0 = time.perf_counter()
    weights, source = _classifier(classifier, scale, out, log)
    nets: dict[str, Any] = {}
    preds: dict[str, list[Any]] = {}
    done = 0
    for i, (key, name, label, init, units) in enumerate(STAGES):
        stage = replace(scale, seg_steps=scale.seg_steps * units)
        done += stage.seg_steps
        start = "pretrained classifier" if init == "classifier" else {k: lb for k, _, lb, *_ in STAGES}[init]
        log(f"[{i + 1}/{len(STAGES) + 1}] {label}: {stage.seg_steps} steps from the {start}")
        t = time.perf_counter()
        extra = (
            [f"model.backbone_weights={weights}"]
            if init == "classifier"
            else [f"model.init_from={out / init / 'checkpoints' / 'best.safetensors'}"]
        )
        held_out = f"data.test_options={{n: {scale.test_images}}}"  # what `fcnseg eval --split test` scores
        cfg = load_config(None, [*overrides(stage, str(dev), name), *FINE_TUNE, held_out, *extra])
        fit(cfg, out / key, progress=not quiet, overwrite=True)  # the demo's own stage folder: trained again
        train_s = time.perf_counter() - t
        t = time.perf_counter()
        model, _ = load_checkpoint(out / key / "checkpoints" / "best.safetensors")
        metrics, preds[key] = evaluate_held_out(model, scale, dev)
        nets[key] = {
            "label": label,
            "arch": name,
            "init": init,
            "steps": done,
            "stage_steps": stage.seg_steps,
            **named(metrics, SyntheticShapes.classes),
            "train_s": train_s,
            "eval_s": time.perf_counter() - t,
            "log": [dict(r) for r in read_log(out / key / "log.csv")],
        }
        log(f"      held-out mean IU {nets[key]['mean_iu']:.3f}, boundary mean IU {nets[key]['boundary_mean_iu']:.3f}")
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(out / "fcn8s" / "checkpoints" / "best.safetensors", out / "checkpoints" / "best.safetensors")
    result = {
        "classes": list(SyntheticShapes.classes),
        "classifier": source,
        "device": str(dev),
        "scale": asdict(scale),
        "nets": nets,
        "wall_s": time.perf_counter() - t0,
    }
    log(f"[{len(STAGES) + 1}/{len(STAGES) + 1}] pictures and report")
    write_outputs(out, result, preds, scale)
    result["wall_s"] = time.perf_counter() - t0
    write_json(
        out / "metrics.json",
        {**result, "nets": {k: {a: b for a, b in v.items() if a != "log"} for k, v in nets.items()}},
    )
    return result


def table(result: dict[str, Any]) -> str:
    """The one table the demo prints: net, its stage's steps and the total since the classifier (staged nets
    continue from the one before), held-out mean IU, boundary mean IU, the stage's time."""
    lines = [f"{'net':<8} {'stage steps':>11} {'total steps':>11} {'mean IU':>8} {'boundary mean IU':>17} {'time':>7}"]
    for net in result["nets"].values():
        lines.append(
            f"{net['label']:<8} {net['stage_steps']:>11} {net['steps']:>11} {net['mean_iu']:>8.3f} "
            f"{net['boundary_mean_iu']:>17.3f} {net['train_s'] + net['eval_s']:>6.0f}s"
        )
    return "\n".join(lines)
