"""DDP under torchrun on the CPU (gloo): 2 processes = 1 process with the same global batch."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import pytest
import torch

from fcnseg.runtime.checkpoint import load_checkpoint
from fcnseg.runtime.evaluation import evaluate
from tests.helpers import TINY

# VGG16 has no batch norm (whose statistics differ per rank); dropout off, so both runs draw the same numbers
DDP = [
    *TINY,
    "model.name=fcn8s_vgg16",
    "model.width=0.0625",
    "model.dropout=0.0",
    "train.max_iter=4",
    "train.eval_every=4",
    "train.checkpoint_every=4",
    "train.lr=0.01",
    "data.val_options={n: 7}",
]


def _run(args: list[str], nproc: int, out, batch: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    launcher = (
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
        if nproc > 1
        else [sys.executable]
    )
    config = out.parent / "base.yaml"
    config.write_text("model:\n  name: fcn8s_vgg16\n")
    cmd = [
        *launcher,
        "-m",
        "fcnseg",
        "train",
        str(config),
        "--quiet",
        "--out",
        str(out),
        "--set",
        *args,
        f"data.batch_size={batch}",
    ]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def _losses(run_dir) -> list[float]:
    with (run_dir / "log.csv").open() as f:
        return [float(r["loss"]) for r in csv.DictReader(f) if r["loss"]]


@pytest.mark.slow
def test_two_processes_match_one_with_the_same_global_batch(tmp_path) -> None:
    single = _run(DDP, 1, tmp_path / "one", batch=4)
    assert single.returncode == 0, single.stderr[-2000:]
    ddp = _run(DDP, 2, tmp_path / "two", batch=2)
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    torch.testing.assert_close(
        torch.tensor(_losses(tmp_path / "two")), torch.tensor(_losses(tmp_path / "one")), rtol=1e-4, atol=1e-6
    )
    a, _ = load_checkpoint(tmp_path / "one" / "checkpoints" / "last.safetensors")
    b, _ = load_checkpoint(tmp_path / "two" / "checkpoints" / "last.safetensors")
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        torch.testing.assert_close(vb, va, rtol=1e-4, atol=1e-6, msg=k)


def test_sharded_evaluation_counts_every_image_exactly_once() -> None:
    """World of 3 over 7 images (not divisible): summed shard matrices equal the one-process matrix."""
    import fcnseg
    from fcnseg.data import SyntheticShapes
    from fcnseg.data.transforms import eval_transforms
    from fcnseg.preprocessing import IMAGENET

    ds = SyntheticShapes(7, 32, "val", transforms=eval_transforms(IMAGENET))
    model = fcnseg.get_model("fcn8s_resnet18", num_classes=9, width=0.0625)
    with torch.no_grad():
        for n in model.score_layer_names():
            getattr(model, n).weight.normal_()
    whole = torch.tensor(evaluate(model, ds, 9)[""]["confusion"])
    shards = sum(torch.tensor(evaluate(model, ds, 9, rank=r, world=3)[""]["confusion"]) for r in range(3))
    assert torch.equal(shards, whole) and int(whole.sum()) > 0


def _eval_rank(rank: int, world: int, port: int, out: str) -> None:
    import torch.distributed as dist

    import fcnseg
    from fcnseg.data import SyntheticShapes
    from fcnseg.data.transforms import eval_transforms
    from fcnseg.preprocessing import IMAGENET

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)  # the same random score layers on every rank
        model = fcnseg.get_model("fcn8s_resnet18", num_classes=9, width=0.0625)
        with torch.no_grad():
            for n in model.score_layer_names():
                getattr(model, n).weight.normal_()
        ds = SyntheticShapes(7, 32, "val", transforms=eval_transforms(IMAGENET))
        result = evaluate(model, ds, 9, rank=rank, world=world)[""]
        torch.save(torch.tensor(result["confusion"]), f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def test_two_process_evaluation_of_an_odd_sized_set_equals_one_process(tmp_path) -> None:
    """7 images on 2 real gloo processes: no image padded in (DistributedSampler would repeat one)."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = str(tmp_path / "confusion")
    mp.spawn(_eval_rank, args=(2, port, out), nprocs=2, join=True)
    torch.manual_seed(0)
    import fcnseg
    from fcnseg.data import SyntheticShapes
    from fcnseg.data.transforms import eval_transforms
    from fcnseg.preprocessing import IMAGENET

    model = fcnseg.get_model("fcn8s_resnet18", num_classes=9, width=0.0625)
    with torch.no_grad():
        for n in model.score_layer_names():
            getattr(model, n).weight.normal_()
    ds = SyntheticShapes(7, 32, "val", transforms=eval_transforms(IMAGENET))
    single = torch.tensor(evaluate(model, ds, 9)[""]["confusion"])
    for rank in range(2):  # both ranks hold the all-reduced matrix
        assert torch.equal(torch.load(f"{out}.{rank}"), single)
    labelled = sum(int((torch.as_tensor(ds[i][1]) != 255).sum()) for i in range(len(ds)))
    assert int(single.sum()) == labelled  # every labelled pixel of every image, once
