"""bf16 training (``train.amp``) against fp32 over several seeds: held-out mean IU and speed.

Usage:  python benchmarks/bench_train_bf16.py [--seeds 0 1 2] [--steps N] [--workloads recipe fcn32s] [--json FILE]

Issue 17, point 4. Two workloads, each trained fp32 and bf16 with the same seeds:

- ``recipe``: ``configs/synthetic-fcn8s.yaml`` (FCN-8s from the shipped classifier);
- ``fcn32s``: the miniature pipeline's FCN-32s at the demo's scale (the shipped classifier convolutionalized
  and fine-tuned, :data:`fcnseg.experiments.demo.DEMO`).

``--steps`` shortens every run alike (the schedule is rescaled with it). Held-out mean IU comes from
SyntheticShapes's ``test`` split at the training size (never trained or selected on); the verdict
compares the fp32−bf16 difference of the seed means with the seed spread (the larger standard
deviation of the two). Wall time is per run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from fcnseg.config import load_config
from fcnseg.data import SyntheticShapes
from fcnseg.data.transforms import eval_transforms
from fcnseg.runtime.checkpoint import load_checkpoint, preprocessing_of
from fcnseg.runtime.evaluation import evaluate
from fcnseg.runtime.hardware import isa_summary
from fcnseg.train.trainer import fit

REPO = Path(__file__).resolve().parents[1]


def _workload(name: str, steps: int | None) -> tuple[Path | None, list[str]]:
    if name == "recipe":
        over = [f"train.max_iter={steps}", f"train.eval_every={steps}", f"train.checkpoint_every={steps}"]
        return REPO / "configs" / "synthetic-fcn8s.yaml", over if steps else []
    from fcnseg.experiments.scale import CLASSIFIER, DEMO, overrides
    from fcnseg.pretrained import PREFIX

    over = [*overrides(DEMO, "cpu", "fcn32s_vgg16"), f"model.backbone_weights={PREFIX}{CLASSIFIER}"]
    if steps:
        over += [f"train.max_iter={steps}", f"train.eval_every={steps}", f"train.checkpoint_every={steps}"]
    return None, over


def held_out(checkpoint: Path, n: int) -> float:
    model, info = load_checkpoint(checkpoint)
    size = info.config["data"]["options"].get("size", 128)
    test = SyntheticShapes(n, size, "test", transforms=eval_transforms(preprocessing_of(info)))
    return evaluate(model, test, dict(model.heads), batch_size=8)[next(iter(model.heads))]["mean_iu"]


def one_run(workload: str, seed: int, amp: bool, steps: int | None, test: int) -> dict[str, float]:
    path, over = _workload(workload, steps)
    cfg = load_config(path, [*over, f"train.seed={seed}", f"train.amp={str(amp).lower()}", "train.log_every=1000000"])
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        fit(cfg, Path(tmp), progress=False)
        wall = time.perf_counter() - t
        return {"mean_iu": held_out(Path(tmp) / "checkpoints" / "last.safetensors", test), "wall_s": wall}


def summarize(runs: dict[str, list[dict[str, float]]]) -> dict[str, float | str]:
    iu = {k: [r["mean_iu"] for r in v] for k, v in runs.items()}
    wall = {k: statistics.fmean(r["wall_s"] for r in v) for k, v in runs.items()}
    spread = max(statistics.stdev(v) if len(v) > 1 else 0.0 for v in iu.values())
    diff = statistics.fmean(iu["fp32"]) - statistics.fmean(iu["bf16"])
    return {
        "fp32_mean_iu": statistics.fmean(iu["fp32"]),
        "bf16_mean_iu": statistics.fmean(iu["bf16"]),
        "difference": diff,
        "seed_spread": spread,
        "within_spread": "yes" if abs(diff) <= spread else "no",
        "speedup_bf16": wall["fp32"] / wall["bf16"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, help="train this many steps instead of each recipe's own")
    ap.add_argument("--workloads", nargs="+", default=["recipe", "fcn32s"], choices=["recipe", "fcn32s"])
    ap.add_argument("--test", type=int, default=100, help="held-out scenes (default 100)")
    ap.add_argument("--json")
    args = ap.parse_args()
    result: dict = {
        "machine": isa_summary(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "steps": args.steps,
        "seeds": args.seeds,
        "workloads": {},
    }
    for workload in args.workloads:
        runs: dict[str, list[dict[str, float]]] = {"fp32": [], "bf16": []}
        for seed in args.seeds:
            for precision in ("fp32", "bf16"):  # interleaved: a machine slowing down slows both alike
                r = one_run(workload, seed, precision == "bf16", args.steps, args.test)
                runs[precision].append({**r, "seed": seed})
                print(
                    f"{workload} seed {seed} {precision}: held-out mean IU {r['mean_iu']:.4f}, {r['wall_s']:.0f} s",
                    flush=True,
                )
        result["workloads"][workload] = {"runs": runs, **summarize(runs)}
        s = result["workloads"][workload]
        print(
            f"{workload}: fp32 {s['fp32_mean_iu']:.4f}, bf16 {s['bf16_mean_iu']:.4f}, difference "
            f"{s['difference']:+.4f}, seed spread {s['seed_spread']:.4f} (within: {s['within_spread']}); "
            f"bf16 {s['speedup_bf16']:.2f}× the fp32 speed"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
