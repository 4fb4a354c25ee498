"""The machine a process runs on: its CPU's units, its devices, the launcher's process count; a fingerprint.

* :func:`cpu_features`, :func:`has_bf16_units`, :func:`has_int8_units`, :func:`isa_summary` — what this CPU can
  do fast. The engine choice (:mod:`fcnseg.inference.auto`), training's autocast default and ``fcnseg bench``
  read the same facts: bf16 is worth it only where the CPU has bf16 units (AMX-BF16 or AVX512-BF16), int8 only
  where it has dot-product units (AMX-INT8, AVX512-VNNI or AVX-VNNI); elsewhere oneDNN and onnxruntime emulate
  them more slowly than fp32.
* :func:`fingerprint` — the processor, threads and library versions: it keys cached decisions, so a checkpoint
  copied to another machine, or the same machine after an upgrade, decides again.
* :func:`resolve_device` — ``auto`` (CUDA when present), ``cpu``, ``cuda``, ``cuda:N``, checked against this machine;
  :func:`local_device` — the same under a launcher: local rank ``N`` takes ``cuda:N`` and makes it current.
* :func:`world_size` — the launcher's process count (``WORLD_SIZE``), a stale value refused.
* :func:`inference_dtype` — bf16 autocast where the GPU supports it, else fp16; None (fp32) on the CPU.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
from importlib import metadata
from typing import Any

import torch

from ..errors import ConfigError

__all__ = [
    "LAUNCH_VARS",
    "cpu_count",
    "cpu_features",
    "fingerprint",
    "has_bf16_units",
    "has_int8_units",
    "inference_dtype",
    "isa_summary",
    "local_device",
    "resolve_device",
    "world_size",
]

#: the flags (as /proc/cpuinfo spells them) that matter to inference speed, in reporting order
_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16", "amx_int8", "amx_tile")


@functools.lru_cache(maxsize=1)
def cpu_features() -> dict[str, Any]:
    """``{"model": name, "flags": [...], "cores": n}`` of this CPU (flags limited to the ones that matter)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and model in ("", platform.machine(), platform.processor()):
                    model = value.strip()
                elif key.strip() in ("flags", "Features"):
                    flags = set(value.split())
                    break
    except OSError:  # not Linux: torch's own reading of the ISA level only
        flags = {"avx2"} if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512") else set()
        if torch.backends.cpu.get_cpu_capability() == "AVX512":
            flags.add("avx512f")
    return {"model": model, "flags": [f for f in _FLAGS if f in flags], "cores": os.cpu_count() or 1}


def has_bf16_units() -> bool:
    """True where the CPU computes bf16 natively (AMX-BF16 or AVX512-BF16) and oneDNN can use it."""
    flags = cpu_features()["flags"]
    native = "amx_bf16" in flags or "avx512_bf16" in flags
    return native and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def has_int8_units() -> bool:
    """True where the CPU has int8 dot-product units (AMX-INT8, AVX512-VNNI or AVX-VNNI)."""
    return any(f in cpu_features()["flags"] for f in ("amx_int8", "avx512_vnni", "avx_vnni"))


def isa_summary() -> str:
    """One line for reports: ``Intel Xeon … · AVX2 AVX-512 AVX512-BF16 VNNI AMX-BF16 AMX-INT8 · 2 cores``."""
    names = {
        "avx2": "AVX2",
        "avx512f": "AVX-512",
        "avx512_bf16": "AVX512-BF16",
        "avx512_vnni": "AVX512-VNNI",
        "avx_vnni": "AVX-VNNI",
        "amx_bf16": "AMX-BF16",
        "amx_int8": "AMX-INT8",
    }
    f = cpu_features()
    units = " ".join(names[x] for x in f["flags"] if x in names) or "no AVX2"
    return f"{f['model']} · {units} · {f['cores']} cores"


def fingerprint(device: torch.device | str = "cpu") -> dict[str, Any]:
    """What a cached engine decision depends on besides the checkpoint: the processor, the threads,
    the libraries' versions (and the GPU's name on CUDA); ``["id"]`` is a short hash of the rest."""
    from .. import __version__

    device = torch.device(device)
    facts: dict[str, Any] = {
        **cpu_features(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "fcnseg": __version__,
        "device": device.type,
    }
    if device.type == "cuda":
        facts["gpu"] = torch.cuda.get_device_name(device)
    for lib in ("onnxruntime", "openvino"):
        try:
            facts[lib] = metadata.version(lib)  # the installed version, without importing the library
        except metadata.PackageNotFoundError:
            facts[lib] = None
    facts["id"] = hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]
    return facts


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when present), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``; one that is not here is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"device {name!r}: use auto, cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"device {name!r}: use auto, cpu, cuda or cuda:N")
    if device.type == "mps" and not (torch.backends.mps.is_built() and torch.backends.mps.is_available()):
        raise ConfigError(
            f"device {name!r}: Apple's MPS is not available in this PyTorch on this machine; use cpu or auto"
        )
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(f"device {name!r}: no CUDA device is available here; use cpu or auto")
        if device.index is not None and device.index >= count:
            raise ConfigError(f"device {name!r}: only {count} CUDA device(s) here (cuda:0 … cuda:{count - 1})")
    return device


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, str(default))
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} in the environment: expected an integer") from None


def local_device(name: str, world: int = 1) -> torch.device:
    """The device of this process: :func:`resolve_device`, then, under a launcher with CUDA, ``cuda:LOCAL_RANK``.

    With CUDA it also calls ``torch.cuda.set_device``, so that everything that uses "the current device"
    (NCCL's communicator, ``torch.cuda.*`` calls without an index, cuDNN handles) uses this process's GPU.

    Raises:
        ConfigError: ``cuda:N`` given while several processes share the node (every rank would take the same
            GPU and NCCL would stop with a duplicate-GPU error), or LOCAL_RANK beyond the node's GPUs.
    """
    device = resolve_device(name)
    if device.type != "cuda":
        return device
    if world > 1:
        local_rank = _env_int("LOCAL_RANK", 0)
        local_world = _env_int("LOCAL_WORLD_SIZE", world)
        count = torch.cuda.device_count()
        if device.index is not None and local_world > 1:
            raise ConfigError(
                f"device {name!r} with {local_world} processes on this node: every rank would use the same GPU; "
                "use cuda or auto (each local rank then takes cuda:LOCAL_RANK)"
            )
        if device.index is None:
            if local_rank >= count:
                raise ConfigError(
                    f"LOCAL_RANK={local_rank} but this node has {count} CUDA device(s): start at most {count} "
                    "processes per node (torchrun --nproc_per_node)"
                )
            device = torch.device("cuda", local_rank)
    if device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    torch.cuda.set_device(device)
    return device


def inference_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 on GPUs that support it (Ampere and later), fp16 on older ones, None (fp32) on the CPU."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


#: what a launcher (torchrun, SLURM with torchrun, mp.spawn with env://) sets beside WORLD_SIZE
LAUNCH_VARS = ("RANK", "MASTER_ADDR", "MASTER_PORT")


def world_size() -> int:
    """``WORLD_SIZE`` from the environment, checked: a stale value without a launcher is refused at once.

    Raises:
        ConfigError: WORLD_SIZE is not a positive integer, or is above 1 while RANK, MASTER_ADDR or
            MASTER_PORT is missing (without them the rendezvous would wait 30 minutes and time out).
    """
    raw = os.environ.get("WORLD_SIZE", "1")
    try:
        world = int(raw)
    except ValueError:
        world = 0
    if world < 1:
        raise ConfigError(f"WORLD_SIZE={raw!r} in the environment: expected a positive integer")
    missing = [v for v in LAUNCH_VARS if not os.environ.get(v)]
    if world > 1 and missing:
        raise ConfigError(
            f"WORLD_SIZE={world} is set but {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not: "
            "launch with torchrun (it sets them all), or unset WORLD_SIZE to run one process"
        )
    return world


def cpu_count() -> int:
    """Cores this process may use (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
