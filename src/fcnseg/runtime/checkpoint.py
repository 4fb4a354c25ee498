"""Self-describing checkpoints, written atomically, loaded without executing code.

A checkpoint ``NAME`` is two files:

* ``NAME.safetensors`` — the model weights (``unwrap(model).state_dict()``) and, in the safetensors
  metadata, everything needed to rebuild the model: registry name, classes/heads, width, channels,
  preprocessing, step, best mean IU and the resolved run configuration. Enough for ``predict`` and
  ``eval``; safetensors cannot carry code.
* ``NAME.state-STEP.pt`` — the training state for ``--resume`` (optimizer, AMP scaler, step, RNG
  state), loaded with ``torch.load(weights_only=True)``.

Each file goes to a temporary name and is renamed into place: the new state first, then the weights
(whose metadata records the step), and only then are older state files removed. A process killed at
any instant therefore leaves weights whose step has its matching state on disk.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch import nn

from .. import __version__
from ..errors import CheckpointError, first_line
from ..files import check_regular, open_regular
from ..io import atomic_write
from ..json_safe import loads_json
from ..models import FCN, get_model
from ..preprocessing import CAFFE_VOC, Preprocessing
from .checkpoint_meta import check_finite, check_metadata, check_shapes

__all__ = [
    "CheckpointInfo",
    "load_checkpoint",
    "load_training_state",
    "preprocessing_of",
    "save_checkpoint",
    "state_file",
    "unwrap",
]

FORMAT = 1


@dataclass
class CheckpointInfo:
    """What a checkpoint says about itself."""

    arch: str
    model_kwargs: dict[str, Any]
    classes: list[str] = field(default_factory=list)
    preprocessing: dict[str, Any] = field(default_factory=dict)
    step: int = 0
    best_mean_iu: float | None = None
    config: dict[str, Any] = field(default_factory=dict)
    version: str = ""
    train_dtype: str | None = None  # float32 | bfloat16 | float16: what train.amp resolved to (None: not recorded)


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside DDP (``.module``) and ``torch.compile`` (``._orig_mod``) wrappers."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, nn.Module):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def model_kwargs(model: nn.Module) -> dict[str, Any]:
    """The build arguments :func:`~fcnseg.models.get_model` recorded on ``model`` (what rebuilds it).

    Raises:
        CheckpointError: ``model`` was not built by ``get_model`` (nothing says how to rebuild it).
    """
    args = getattr(unwrap(model), "build_args", None)
    if not isinstance(args, dict):
        raise CheckpointError(
            f"{type(model).__name__} carries no build_args: build it with fcnseg.get_model to checkpoint it"
        )
    return dict(args)


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    info: CheckpointInfo,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    scaler: Any = None,
    rng_state: torch.Tensor | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``path.safetensors`` (+ ``path.state-STEP.pt`` when an optimizer is given), atomically.

    ``extra`` goes into the training state as well (the trainer's RNG states, world size and global batch).
    """
    path = Path(path)
    state_path = None
    if optimizer is not None:
        state = {"step": info.step, "optimizer": optimizer.state_dict(), "best_mean_iu": info.best_mean_iu}
        if scaler is not None:
            state["scaler"] = scaler.state_dict()
        if rng_state is not None:
            state["rng"] = rng_state
        state.update(extra or {})
        state_path = state_file(path, info.step)
        buf = io.BytesIO()  # serialised first: a full disk then fails our own write, which names the file
        torch.save(state, buf)
        with atomic_write(state_path) as f:
            f.write(buf.getbuffer())
        del buf
    tensors = {k: v.detach().cpu().contiguous() for k, v in unwrap(model).state_dict().items()}
    meta = {"format": FORMAT, **info.__dict__, "version": __version__}
    blob = save(tensors, metadata={"fcnseg": json.dumps(meta)})
    target = path.with_suffix(".safetensors")
    with atomic_write(target) as f:
        f.write(blob)
    if state_path is not None:  # the weights now match the new state: older states can go
        for old in path.parent.glob(f"{path.name}.state-*.pt"):
            if old != state_path:
                old.unlink(missing_ok=True)
    return target


def state_file(path: str | Path, step: int) -> Path:
    """``NAME.state-00000042.pt`` for checkpoint ``NAME`` at step 42."""
    path = Path(path)
    return path.parent / f"{path.name}.state-{step:08d}.pt"


def read_info(path: str | Path) -> CheckpointInfo:
    """The metadata of a ``.safetensors`` checkpoint, without loading its tensors."""
    path = Path(path)
    meta, _ = _read_header(path)
    if "fcnseg" not in meta:
        raise CheckpointError(f"{path}: safetensors file without fcnseg metadata; use --model NAME --weights {path}")
    data = loads_json(meta["fcnseg"], f"{path}: fcnseg metadata", error=CheckpointError)  # nesting bounded
    return CheckpointInfo(**check_metadata(data, path))


def _read_header(path: Path) -> tuple[dict[str, str], dict[str, tuple[int, ...]]]:
    """The metadata and tensor shapes of a safetensors file, from its header (no tensor is read)."""
    from safetensors import safe_open

    if path.is_dir() or (path.exists() and not path.is_file()):
        raise CheckpointError(f"{path}: not a regular file")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except FileNotFoundError:
        raise CheckpointError(f"{path}: checkpoint not found") from None
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path}: not a safetensors checkpoint ({first_line(e)})") from None
    return meta, shapes


def preprocessing_of(info: CheckpointInfo) -> Preprocessing:
    """The preprocessing a checkpoint declares; none declared means the reference's Caffe VOC convention."""
    if not info.preprocessing:
        return CAFFE_VOC
    try:
        return Preprocessing.from_dict(info.preprocessing)
    except TypeError as e:
        raise CheckpointError(
            f"checkpoint of {info.arch}: malformed preprocessing record {info.preprocessing} ({e})"
        ) from None


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` file, or of a ``.pt``/``.pth`` state dict loaded with ``weights_only``."""
    path = check_regular(path, what="weights file", error=CheckpointError)
    if path.suffix == ".safetensors":
        _read_header(path)  # a malformed header is named as such before the tensors are read
    try:
        if path.suffix == ".safetensors":
            return load_file(str(path))
        with open_regular(path, what="weights file", error=CheckpointError) as f:
            obj = torch.load(f, map_location="cpu", weights_only=True)
    except CheckpointError:
        raise
    except Exception as e:  # safetensors/pickle errors of every kind: refuse the file, name it
        raise CheckpointError(f"{path}: cannot load weights safely ({type(e).__name__}: {first_line(e)})") from None
    if isinstance(obj, dict) and "model_state_dict" in obj:
        obj = obj["model_state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: not a state dict of tensors")
    for key, value in obj.items():
        _check_dense(key, value, path)
    return obj


def _check_dense(key: str, value: torch.Tensor, path: Path) -> None:
    """Weights are dense tensors held in the file: a sparse or meta tensor holds no weights, and a view larger
    than its storage (``expand``: a few bytes standing for gigabytes) would be allocated in full when copied."""
    if value.layout != torch.strided or value.is_meta:
        raise CheckpointError(f"{path}: tensor {key} is {value.layout} on {value.device.type}, not dense weights")
    expanded = any(st == 0 and n > 1 for st, n in zip(value.stride(), value.shape, strict=True))
    if expanded or (value.numel() and value.untyped_storage().nbytes() < value.numel() * value.element_size()):
        raise CheckpointError(
            f"{path}: tensor {key} {tuple(value.shape)} is a view larger than the data the file holds for it"
        )


def load_into(model: nn.Module, state: dict[str, torch.Tensor], source: str | Path) -> None:
    """``load_state_dict(strict=True)`` with an error that lists what does not fit. A model built on the ``meta``
    device (shapes only) takes the tensors themselves, cast to its dtypes: no second copy of the weights."""
    complex_ = [k for k, v in state.items() if v.is_complex()]
    if complex_:
        raise CheckpointError(f"{source}: tensor {complex_[0]} holds complex numbers; weights are real")
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or shapes:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes)):
            if items:
                parts.append(f"{label}: {', '.join(items[:5])}{' …' if len(items) > 5 else ''}")
        raise CheckpointError(
            f"{source}: does not fit {getattr(model, 'arch', type(model).__name__)} ({'; '.join(parts)})"
        )
    if any(v.is_meta for v in own.values()):
        model.load_state_dict(_owned(state, own), strict=True, assign=True)
    else:
        model.load_state_dict(state, strict=True)
    check_finite(model.state_dict(), source)  # as the model holds them: a float64 1e300 is inf in float32


def build_loaded(arch: str, kwargs: dict[str, Any], state: dict[str, torch.Tensor], source: str | Path) -> FCN:
    """Registry net ``arch`` built with ``kwargs`` and holding ``state``: built shape-only on the ``meta`` device
    and given the tensors themselves (initialising it for real only to overwrite every weight costs 1.6 s for
    FCN-8s VGG16), or built for real where a buffer the state lacks would stay empty."""
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    with torch.device("meta"):
        model = get_model(arch, **kwargs)
    load_into(model, state, source)
    if not materialized(model):
        model = get_model(arch, **kwargs)
        load_into(model, state, source)
    return model


def _owned(state: dict[str, torch.Tensor], own: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state``'s tensors as plain tensors (a ``.pt`` file may hold ``nn.Parameter``s: assigned as they are, a
    buffer would become a parameter) in ``own``'s dtypes, none sharing its storage with another (a ``.pt`` file may
    hold views of one storage: assigned as they are, the parameters would be tied). The callers pass tensors fresh
    from a file: the others are assigned as they are, not copied."""
    seen: set[int] = set()
    out = {}
    for key, value in state.items():
        value = value.detach().to(own[key].dtype)
        storage = value.untyped_storage()
        alone = storage.nbytes() == value.numel() * value.element_size() and value.is_contiguous()
        out[key] = (
            value if alone and storage.data_ptr() not in seen else value.clone(memory_format=torch.contiguous_format)
        )
        seen.add(storage.data_ptr())
    return out


def materialized(model: nn.Module) -> bool:
    """Whether every parameter and buffer of ``model`` holds data (none left on the ``meta`` device)."""
    return not any(t.is_meta for t in (*model.parameters(), *model.buffers()))


def load_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu") -> tuple[FCN, CheckpointInfo]:
    """Rebuild the model a checkpoint describes and load its weights.

    Raises:
        CheckpointError: missing, corrupt or foreign file, or weights that do not fit their own metadata.
    """
    path = Path(path)
    info = read_info(path)
    check_shapes(info.arch, info.model_kwargs, _read_header(path)[1], path)  # before anything is allocated
    model = build_loaded(info.arch, info.model_kwargs, load_state_dict_file(path), path)  # NaN, inf refused there
    return model.to(map_location), info


def load_training_state(path: str | Path, step: int | None = None) -> dict[str, Any]:
    """The training state of checkpoint ``path`` at ``step`` (default: the weights' step, else the newest).

    Loaded with ``weights_only=True``.
    """
    base = Path(path).with_suffix("")
    if step is None and base.with_suffix(".safetensors").is_file():
        step = read_info(base.with_suffix(".safetensors")).step
    if step is not None:
        path = state_file(base, step)
    else:
        found = sorted(base.parent.glob(f"{base.name}.state-*.pt"))
        path = found[-1] if found else state_file(base, 0)
    if not os.path.exists(path):
        raise CheckpointError(f"{path}: training state not found (cannot resume)")
    try:
        with open_regular(path, what="training state", error=CheckpointError) as f:
            return torch.load(f, map_location="cpu", weights_only=True)
    except CheckpointError:
        raise
    except Exception as e:
        raise CheckpointError(
            f"{path}: cannot load training state safely ({type(e).__name__}: {first_line(e)})"
        ) from None
