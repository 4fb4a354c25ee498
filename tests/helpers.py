"""A tiny synthetic run configuration that trains in seconds on 2 CPU cores."""

from __future__ import annotations

from fcnseg.config import RunConfig, load_config

TINY = [
    "model.name=fcn8s_resnet18",
    "model.width=0.0625",
    "data.options={n: 64, size: 32}",
    "data.val_options={n: 6}",
    "data.preprocessing=imagenet",
    "data.batch_size=2",
    "train.lr=0.02",
    "train.momentum=0.9",
    "train.normalize=true",
    "train.max_iter=6",
    "train.log_every=2",
    "train.eval_every=3",
    "train.checkpoint_every=3",
    "eval.grid_images=2",
    "train.device=cpu",  # CPU tests pin the CPU, also on a machine with a GPU (tests/test_cuda.py runs there)
    # fp32 on every machine: the default (auto) is bf16 where the CPU has bf16 units, which would make the exact
    # comparisons (resume, DDP, layouts) machine-dependent; tests/train/test_amp_default.py tests auto itself
    "train.amp=false",
]


def tiny(*extra: str) -> RunConfig:
    return load_config(None, [*TINY, *extra])
