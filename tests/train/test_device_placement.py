"""Where each rank runs, without a GPU: torch.cuda and the process group stood in for, the choices checked.

These pin what a 2-GPU node would do: local rank N on ``cuda:N`` (set_device, NCCL bound to it, DDP's
device_ids), fixed upsampling buffers left out of DDP's broadcasts, SyncBatchNorm, per-rank CUDA seeds and
the CUDA generator states a checkpoint keeps.
"""

from __future__ import annotations

import contextlib
import types

import pytest
import torch
import torch.distributed as dist
from torch import nn

import fcnseg
from fcnseg.errors import CheckpointError, ConfigError
from fcnseg.runtime import hardware as device_mod
from fcnseg.runtime.hardware import local_device
from fcnseg.train import distributed
from fcnseg.train.distributed import DistInfo, fixed_buffers, setup, wrap_ddp
from fcnseg.train.rng import cuda_seed, restore_rng, rng_states, seed_run


@pytest.fixture
def two_gpu_node(monkeypatch):
    """A node with 2 CUDA devices: records set_device calls; torchrun's variables for a world of 2."""
    calls: list[torch.device] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: calls.append(torch.device(d)))
    for k, v in {
        "WORLD_SIZE": "2",
        "LOCAL_WORLD_SIZE": "2",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": "29500",
    }.items():
        monkeypatch.setenv(k, v)
    return calls


@pytest.mark.parametrize("local_rank", [0, 1])
@pytest.mark.parametrize("name", ["auto", "cuda"])
def test_local_rank_n_of_a_two_gpu_node_selects_cuda_n(two_gpu_node, monkeypatch, local_rank, name) -> None:
    monkeypatch.setenv("RANK", str(local_rank))
    monkeypatch.setenv("LOCAL_RANK", str(local_rank))
    device = local_device(name, distributed.world_size())
    assert device == torch.device("cuda", local_rank)
    assert two_gpu_node == [torch.device("cuda", local_rank)]  # made current: NCCL and cuDNN use it


def test_one_process_on_cuda_takes_the_current_device_and_sets_it(two_gpu_node, monkeypatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert local_device("auto", 1) == torch.device("cuda", 0)
    assert local_device("cuda:1", 1) == torch.device("cuda", 1)
    assert two_gpu_node == [torch.device("cuda", 0), torch.device("cuda", 1)]


def test_a_fixed_gpu_for_every_local_rank_or_too_many_ranks_is_refused(two_gpu_node, monkeypatch) -> None:
    monkeypatch.setenv("LOCAL_RANK", "1")
    with pytest.raises(ConfigError, match=r"'cuda:0' with 2 processes on this node: every rank would use the same"):
        local_device("cuda:0", 2)
    monkeypatch.setenv("LOCAL_RANK", "2")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "3")
    with pytest.raises(ConfigError, match=r"LOCAL_RANK=2 but this node has 2 CUDA device\(s\)"):
        local_device("auto", 3)
    assert two_gpu_node == []


def test_without_cuda_auto_is_the_cpu_and_cuda_is_refused(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert local_device("auto", 2) == torch.device("cpu")
    with pytest.raises(ConfigError, match="no CUDA device is available here"):
        local_device("cuda", 1)


def test_nccl_is_initialised_for_the_rank_s_device(monkeypatch) -> None:
    seen: dict = {}
    monkeypatch.setenv("WORLD_SIZE", "2")
    for k, v in {"RANK": "1", "LOCAL_RANK": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda backend, **kw: seen.update(backend=backend, **kw))
    monkeypatch.setattr(dist, "get_rank", lambda: 1)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    info = setup(torch.device("cuda", 1), timeout_s=120)
    assert info == DistInfo(1, 2, 1)
    assert seen["backend"] == "nccl" and seen["device_id"] == torch.device("cuda", 1)
    assert seen["timeout"].total_seconds() == 120
    seen.clear()
    setup(torch.device("cpu"))
    assert seen["backend"] == "gloo" and "device_id" not in seen


class _FakeDDP(nn.Module):
    """Records what DistributedDataParallel was given."""

    _set_params_and_buffers_to_ignore_for_model = staticmethod(
        nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model
    )

    def __init__(self, module: nn.Module, **kwargs) -> None:
        super().__init__()
        self.module, self.kwargs = module, kwargs


def test_ddp_gets_the_local_gpu_and_leaves_fixed_upsampling_out_of_broadcasts(monkeypatch) -> None:
    monkeypatch.setattr(nn.parallel, "DistributedDataParallel", _FakeDDP)
    vgg = fcnseg.get_model("fcn8s_vgg16", num_classes=3, width=1 / 16)
    wrapped = wrap_ddp(vgg, torch.device("cuda", 1))
    assert wrapped.kwargs["device_ids"] == [1] and wrapped.kwargs["output_device"] == 1
    ignored = set(vgg._ddp_params_and_buffers_to_ignore)
    assert {"upscore2.weight", "upscore8.weight", "upscore_pool4.weight"} <= ignored == set(fixed_buffers(vgg))
    assert ignored == {n for n, _ in vgg.named_buffers()}  # VGG has no other buffers …
    assert wrapped.kwargs["broadcast_buffers"] is False  # … so nothing is broadcast each step
    resnet = fcnseg.get_model("fcn8s_resnet18", num_classes=3, width=1 / 16)
    wrapped = wrap_ddp(resnet, torch.device("cpu"))
    assert "device_ids" not in wrapped.kwargs  # CPU (gloo): no device ids
    assert wrapped.kwargs["broadcast_buffers"] is True  # BatchNorm statistics still follow rank 0


def test_sync_batchnorm_converts_the_bn_backbone_on_cuda_and_is_refused_on_the_cpu(monkeypatch) -> None:
    monkeypatch.setattr(nn.parallel, "DistributedDataParallel", _FakeDDP)
    model = fcnseg.get_model("fcn8s_resnet18", num_classes=3, width=1 / 16)
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    wrapped = wrap_ddp(model, torch.device("cuda", 0), sync_bn=True)
    assert n_bn > 0 and sum(isinstance(m, nn.SyncBatchNorm) for m in wrapped.module.modules()) == n_bn
    assert wrapped.kwargs["broadcast_buffers"] is False  # SyncBatchNorm keeps the statistics equal
    with pytest.raises(ConfigError, match=r"train\.sync_bn: SyncBatchNorm needs CUDA"):
        wrap_ddp(fcnseg.get_model("fcn8s_resnet18", num_classes=3, width=1 / 16), torch.device("cpu"), sync_bn=True)


def test_each_rank_seeds_its_own_cuda_generator_and_the_same_cpu_one(monkeypatch) -> None:
    seeds: list[int] = []
    monkeypatch.setattr(torch.cuda, "manual_seed", seeds.append)
    states = []
    for rank in (0, 1):
        seed_run(7, rank, torch.device("cuda", rank))
        states.append(torch.get_rng_state())
    assert seeds == [cuda_seed(7, 0), cuda_seed(7, 1)] and seeds[0] != seeds[1]
    assert torch.equal(states[0], states[1])  # identical initial weights on every rank


def test_cuda_generator_states_are_saved_and_each_rank_restores_its_own(monkeypatch) -> None:
    state = torch.arange(16, dtype=torch.uint8)
    restored: list = []
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device=None: state.clone())
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda s, device=None: restored.append((s, device)))
    saved = rng_states(torch.device("cuda", 0))
    assert torch.equal(saved["cuda_rng"][0], state) and saved["rng"].dtype == torch.uint8
    two = {"rng": saved["rng"], "cuda_rng": [state, state + 1]}
    restore_rng(two, torch.device("cuda", 1), rank=1, where="ckpt")
    assert torch.equal(restored[0][0], state + 1) and restored[0][1] == torch.device("cuda", 1)
    with pytest.raises(CheckpointError, match="cuda_rng has no entry for rank 2"):
        restore_rng(two, torch.device("cuda", 2), rank=2, where="ckpt")
    assert "cuda_rng" not in rng_states(torch.device("cpu"))


def test_inference_dtype_is_bf16_where_supported(monkeypatch) -> None:
    assert device_mod.inference_dtype(torch.device("cpu")) is None
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert device_mod.inference_dtype(torch.device("cuda", 0)) is torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert device_mod.inference_dtype(torch.device("cuda", 0)) is torch.float16


class _Recorder(nn.Module):
    """Stands in for DDP: counts micro-steps run under ``no_sync``."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module, self.synced, self.unsynced, self._quiet = module, 0, 0, False

    @contextlib.contextmanager
    def no_sync(self):
        self._quiet = True
        yield
        self._quiet = False

    def forward(self, x):
        if self._quiet:
            self.unsynced += 1
        else:
            self.synced += 1
        return self.module(x)


def test_gradient_accumulation_all_reduces_on_the_last_micro_step_only(monkeypatch) -> None:
    from fcnseg.train import step as step_mod
    from tests.helpers import tiny

    cfg = tiny("train.iter_size=3", "train.normalize=false")
    model = fcnseg.get_model("fcn8s_resnet18", num_classes=9, width=1 / 16)
    batch = (torch.randn(2, 3, 32, 32), torch.randint(0, 9, (2, 32, 32)))
    monkeypatch.setattr(torch.distributed, "all_reduce", lambda t, **kw: None)  # a world of 2 without peers
    run = types.SimpleNamespace(
        cfg=cfg,
        dist=DistInfo(0, 2, 0),
        model=model,
        ddp_model=_Recorder(model),
        batches=iter([batch] * 3),
        pre=None,
        on_device=False,
        device=torch.device("cpu"),
        dtype=None,
        scaler=None,
        weight=None,
    )
    total, images = step_mod._accumulate(run)
    assert (run.ddp_model.unsynced, run.ddp_model.synced) == (2, 1)
    assert images == 2 * 2 * 3 and torch.isfinite(total)


def test_wrapping_for_ddp_raises_no_deprecation_warning(monkeypatch) -> None:
    """torch 2.14 renamed ``broadcast_buffers``; the old name printed a FutureWarning twice per run."""
    import socket
    import warnings

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(port))
    dist.init_process_group("gloo", rank=0, world_size=1)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            wrap_ddp(fcnseg.get_model("fcn8s_resnet18", num_classes=3, width=1 / 16), torch.device("cpu"))
        assert not [w for w in caught if issubclass(w.category, FutureWarning)], [str(w.message) for w in caught]
    finally:
        dist.destroy_process_group()
