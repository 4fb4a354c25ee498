"""What this CPU can do fast: its vector and matrix units, and a fingerprint that names the machine.

The engine choice (:mod:`fcnseg.inference.auto`) and ``fcnseg bench`` read the same facts: bf16 is
worth trying only where the CPU has bf16 units (AMX-BF16 or AVX512-BF16), int8 only where it has dot
product units (AMX-INT8, AVX512-VNNI or AVX-VNNI); elsewhere oneDNN and onnxruntime emulate them more
slowly than fp32. The fingerprint keys cached decisions: a checkpoint copied to another machine, or the
same machine after a library upgrade, decides again.
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

__all__ = ["cpu_features", "fingerprint", "has_bf16_units", "has_int8_units", "isa_summary"]

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
    names = {"avx2": "AVX2", "avx512f": "AVX-512", "avx512_bf16": "AVX512-BF16", "avx512_vnni": "AVX512-VNNI",
             "avx_vnni": "AVX-VNNI", "amx_bf16": "AMX-BF16", "amx_int8": "AMX-INT8"}  # fmt: skip
    f = cpu_features()
    units = " ".join(names[x] for x in f["flags"] if x in names) or "no AVX2"
    return f"{f['model']} · {units} · {f['cores']} cores"


def fingerprint(device: torch.device | str = "cpu") -> dict[str, Any]:
    """What a cached engine decision depends on besides the checkpoint: the processor, the threads,
    the libraries' versions (and the GPU's name on CUDA); ``["id"]`` is a short hash of the rest."""
    from .. import __version__

    device = torch.device(device)
    facts: dict[str, Any] = {**cpu_features(), "threads": torch.get_num_threads(), "torch": torch.__version__,
                             "fcnseg": __version__, "device": device.type}  # fmt: skip
    if device.type == "cuda":
        facts["gpu"] = torch.cuda.get_device_name(device)
    for lib in ("onnxruntime", "openvino"):
        try:
            facts[lib] = metadata.version(lib)  # the installed version, without importing the library
        except metadata.PackageNotFoundError:
            facts[lib] = None
    facts["id"] = hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]
    return facts
