"""Table 2 in miniature at convergence (``fcnseg experiment miniature --scale converged``).

The nets of the fixed-budget experiment, each trained to its validation plateau and repeated over seeds with the
paper experiment's machinery (:class:`~fcnseg.experiments.paper.runs.Trainer`: the demo's shipped classifier,
its modern recipe, ``train.early_stop``, runs cached by config, trained side by side): FCN-32s-fixed, FCN-32s,
FCN-16s from the FCN-32s, FCN-8s from the FCN-16s (staged, as the paper), FCN-8s at-once and FCN-8s from scratch.
Every net converges, so the staged nets need no step-matched controls: at-once against staged is compared at
both nets' plateaus, as PAMI compares them. Runs that the paper experiment also trains (FCN-32s) are shared when
both use the same ``--out``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from ...errors import ConfigError
from ...io import atomic_write
from ...runtime import load_checkpoint
from ..heldout import evaluate_held_out, skip_effect
from ..paper.recipe import SCALES as PAPER_SCALES
from ..paper.recipe import PaperScale
from ..paper.runs import Request, Trainer, held_out
from ..paper.scoring import aggregate, untrained, values
from ..pool import machine
from ..seeds import pts_sd, seeded_verdict

__all__ = ["TABLE2", "run_converged", "table2_verdicts"]

#: Table 2's row → (run key of the paper recipe, the row it starts from), in the paper's order
TABLE2: dict[str, tuple[str, str | None]] = {
    "fcn32s_fixed": ("fcn32s_fixed", None),
    "fcn32s": ("fcn32s", None),
    "fcn16s": ("fcn16s_staged", "fcn32s"),
    "fcn8s": ("fcn8s_staged", "fcn16s"),
    "fcn8s_atonce": ("fcn8s_atonce", None),
    "fcn8s_onestage": ("fcn8s", None),  # the paper experiment's one-stage FCN-8s: scratch's pretrained twin
    "fcn8s_scratch": ("fcn8s_scratch", None),
}
#: rows whose run's own label would not say what the row is in Table 2
LABELS = {"fcn8s_onestage": "FCN-8s, one stage from the classifier"}


def _train(tr: Trainer) -> dict[str, dict[str, Any]]:
    """Train every row for every seed, in waves (a staged net after the net it starts from)."""
    records: dict[tuple[str, int], dict[str, Any]] = {}
    done: set[str] = set()
    while len(done) < len(TABLE2):
        wave = [row for row, (_, init) in TABLE2.items() if row not in done and (init is None or init in done)]
        reqs = [
            Request(TABLE2[row][0], s, init=TABLE2[init][0] if (init := TABLE2[row][1]) else None)
            for row in wave
            for s in tr.seeds
        ]
        records |= tr.train_many(reqs)
        done.update(wave)
    nets = {}
    for row, (key, _) in TABLE2.items():
        recs = [{**records[(key, s)], **held_out(records[(key, s)]["dir"], tr.ps, tr.device)} for s in tr.seeds]
        nets[row] = aggregate(recs)
        nets[row]["label"] = LABELS.get(row, nets[row]["label"])
    return nets


def table2_verdicts(nets: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The Table 2 claims, each decided from the seeds' paired numbers (:func:`~..seeds.seeded_verdict`)."""
    m = {k: v["mean_iu"] for k, v in nets.items()}
    b = {k: v["boundary_mean_iu"] for k, v in nets.items()}

    def paired(f: Any, *keys: str, number: str = "mean_iu") -> list[float]:
        return [f(*vals) for vals in zip(*(values(nets[k], number) for k in keys), strict=True)]

    return [
        seeded_verdict(
            "fine-tuning the whole net beats training only the score layer",
            paired(lambda a, b: a - b, "fcn32s", "fcn32s_fixed"),
            0.0,
            ">",
            f"FCN-32s {pts_sd(m['fcn32s'])} vs FCN-32s-fixed {pts_sd(m['fcn32s_fixed'])} mean IU, each at its plateau",
            quantity="FCN-32s − FCN-32s-fixed mean IU",
            untrained=untrained(nets["fcn32s"], nets["fcn32s_fixed"]),
        ),
        seeded_verdict(
            "a pretrained classifier, convolutionalized and fine-tuned, beats the same net trained from scratch",
            paired(lambda a, b: a - b, "fcn8s_onestage", "fcn8s_scratch"),
            0.0,
            ">",
            f"FCN-8s from the classifier {pts_sd(m['fcn8s_onestage'])} vs from random weights "
            f"{pts_sd(m['fcn8s_scratch'])} mean IU, each at its plateau (the same net and recipe, one stage; only "
            "the initialisation differs)",
            quantity="pretrained − scratch mean IU",
            untrained=untrained(nets["fcn8s_onestage"], nets["fcn8s_scratch"]),
        ),
        seeded_verdict(
            "the skips improve on FCN-32s",
            paired(lambda a, b, c: min(b - a, c - a), "fcn32s", "fcn16s", "fcn8s"),
            0.0,
            ">",
            f"FCN-32s {pts_sd(m['fcn32s'])} → FCN-16s {pts_sd(m['fcn16s'])} → FCN-8s "
            f"{pts_sd(m['fcn8s'])} mean IU, each at its plateau (the paper's: 59.4 → 62.4 → 62.7)",
            quantity="the smaller of FCN-16s's and FCN-8s's gain over FCN-32s",
            untrained=untrained(nets["fcn32s"], nets["fcn16s"], nets["fcn8s"]),
        ),
        seeded_verdict(
            "finer strides give finer boundaries",
            paired(lambda a, b, c: min(b - a, c - b), "fcn32s", "fcn16s", "fcn8s", number="boundary_mean_iu"),
            0.0,
            ">",
            f"boundary mean IU: FCN-32s {pts_sd(b['fcn32s'])}, FCN-16s {pts_sd(b['fcn16s'])}, FCN-8s "
            f"{pts_sd(b['fcn8s'])}",
            quantity="the smaller step of boundary mean IU from 32s to 16s to 8s",
            untrained=untrained(nets["fcn32s"], nets["fcn16s"], nets["fcn8s"]),
        ),
        seeded_verdict(
            "all-at-once FCN-8s is about as good as staged (PAMI: 65.4 vs 65.5 in the release)",
            paired(lambda a, b: a - b, "fcn8s_atonce", "fcn8s"),
            0.03,
            "|<|",
            f"at-once {pts_sd(m['fcn8s_atonce'])} vs staged {pts_sd(m['fcn8s'])} mean IU, each at its "
            "plateau ('about as good': within 3 points)",
            quantity="at-once − staged FCN-8s mean IU",
            untrained=untrained(nets["fcn8s_atonce"], nets["fcn8s"]),
        ),
    ]


def run_converged(
    out: str | Path,
    *,
    scale: str | PaperScale = "converged",
    device: str = "cpu",
    seeds: tuple[int, ...] = (),
    jobs: int = 1,
    report: str | Path | None = "docs",
    log: Any = print,
    name: str | None = None,
) -> dict[str, Any]:
    """Train Table 2's nets to their plateaus for every seed into ``out``; ``out/miniature.json`` and the report."""
    from .converged_report import write_converged_report

    ps = PAPER_SCALES[scale] if isinstance(scale, str) else scale
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: no CUDA device is available here; use --device cpu")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    tr = Trainer(out, ps, device, log, jobs=max(1, jobs), seeds=tuple(seeds))
    log(f"Table 2 at convergence: {len(TABLE2)} nets × {len(tr.seeds)} seeds, {tr.jobs} at a time")
    nets = _train(tr)
    grid: dict[str, list[Any]] = {}
    for row in ("fcn32s", "fcn16s", "fcn8s", "fcn8s_atonce"):
        model, _ = load_checkpoint(Path(nets[row]["per_seed"][0]["dir"]) / "checkpoints" / "best.safetensors")
        nets[row]["skip_effect"] = skip_effect(model)
        grid[row] = evaluate_held_out(model, ps.seg, torch.device(device))[1]
    result = {
        "method": "plateau",
        "scale": {
            "name": name or (scale if isinstance(scale, str) else "custom"),
            **{k: v for k, v in ps.seg.__dict__.items() if not k.startswith("cls_")},
        },
        "recipe": {
            k: getattr(ps, k) for k in ("cap", "eval_every", "patience", "min_delta", "min_steps", "classifier")
        },
        "seeds": list(tr.seeds),
        "device": device,
        "machine": machine(),
        "nets": nets,
        "verdicts": table2_verdicts(nets),
        "runs_trained": tr.trained,
        "runs_reused": tr.reused,
        "wall_s": time.perf_counter() - t0,
    }
    with atomic_write(out / "miniature.json", "w") as f:
        json.dump(result, f, indent=1)
    if report is not None:
        write_converged_report(result, out / "miniature.json", Path(report), grid, ps)
    log(f"done in {result['wall_s'] / 60:.1f} min")
    return result
