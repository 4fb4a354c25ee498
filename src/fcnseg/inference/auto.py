"""``--engine auto``: the fastest engine × precision for this machine, model and image size, measured once.

On the first input of a size bucket (images of about the same pixel count, :func:`size_bucket`) the
eligible engines (:func:`fcnseg.inference.engines.eligible`: fp32 everywhere; bf16 where the CPU has bf16
units; int8 where it has VNNI/AMX) are built, warmed up and timed side by side on that input, round
robin (a noisy machine slows every engine alike), and the fastest wins. A reduced precision is eligible
only if its label maps agree with fp32 on at least :data:`AGREEMENT` of the pixels of the calibration
images (the checkpoint's own training images, else the images being segmented).

The decision is cached beside the checkpoint in ``CKPT.engine.json`` under a key made of the
checkpoint's SHA-256 (its content, not its mtime), this machine's fingerprint
(:func:`fcnseg.runtime.hardware.fingerprint`: CPU, threads, library versions) and the bucket; the exported
graphs lie beside it too (``CKPT.onnx``, ``CKPT.int8.onnx``, ``CKPT.openvino/``). Another machine, a
retrained checkpoint or an upgrade decides again.

Small work is not worth a decision: when fp32 PyTorch takes under :data:`MIN_FORWARD_S` per image,
``auto`` runs it (no export, no reduced precision, nothing written): a faster engine would save
milliseconds per image at the price of an export and an accuracy risk.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import FCNError, first_line
from ..io import atomic_write
from ..runtime.hardware import fingerprint
from .engines import ENGINES, PRECISION, build_runner, default_engine, eligible

__all__ = ["AGREEMENT", "MIN_FORWARD_S", "AutoEngine", "Decision", "agreement", "size_bucket"]

#: a reduced precision must give fp32's label on at least this share of calibration pixels
AGREEMENT = 0.995
#: below this fp32 PyTorch time per forward pass ``auto`` keeps fp32 PyTorch without measuring
MIN_FORWARD_S = {"cpu": 0.05, "cuda": 0.002}
#: timed rounds per engine (after one warm-up call each); the fastest round counts
ROUNDS = 3


def size_bucket(h: int, w: int) -> int:
    """The bucket of an ``h × w`` input: the power of two at or above ``sqrt(h·w)`` (at least 64)."""
    return max(64, 1 << math.ceil(math.log2(max(1.0, math.sqrt(h * w)))))


@dataclass
class Decision:
    """What ``auto`` chose for one bucket, and the measurements behind it."""

    engine: str
    bucket: int
    measured_at: list[int]  # the (H, W) the engines were timed at
    seconds: dict[str, float] = field(default_factory=dict)  # fastest timed round per engine
    agreement: dict[str, float] = field(default_factory=dict)  # label agreement with fp32 (reduced precisions)
    skipped: dict[str, str] = field(default_factory=dict)  # engines not tried, and why
    reason: str = ""

    def summary(self) -> str:
        times = ", ".join(f"{k} {v:.3f}s" for k, v in sorted(self.seconds.items(), key=lambda kv: kv[1]))
        return f"engine auto: {self.engine} for ~{self.bucket}px images ({self.reason or times})"


def agreement(ref: Any, out: Any) -> float:
    """Share of pixels (over all heads) where ``out``'s argmax equals ``ref``'s."""
    refs = list(ref.values()) if isinstance(ref, dict) else [ref]
    outs = list(out.values()) if isinstance(out, dict) else [out]
    same = sum(int((r.argmax(1) == o.float().argmax(1)).sum()) for r, o in zip(refs, outs, strict=True))
    return same / max(1, sum(r.argmax(1).numel() for r in refs))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class AutoEngine(nn.Module):
    """Runs ``model`` on the engine ``auto`` chose for each input's size bucket (or on a forced engine).

    Args:
        model: the FCN (in eval mode, on ``device``).
        device: where the PyTorch engines run.
        source: the checkpoint file (exported graphs and the decision cache go beside it); None: PyTorch
            engines only, decisions kept in memory.
        calibration: the checkpoint's calibration images (preprocessed ``(C, H, W)``), called at most once;
            None or a failure: the images being segmented calibrate.
        engine: ``"auto"`` or one name of :data:`~fcnseg.inference.engines.ENGINES`; None: ``FCNSEG_ENGINE``,
            else ``"auto"``.
        log: where the one line per decision goes (stderr by default).
        reloadable: ``model``'s weights are exactly ``source``'s tensors (it was loaded from that file). Then,
            once every decided size runs on an exported engine, the fp32 weights are dropped (``model`` moves
            to the meta device: 0.54 GB for fcn8s_vgg16) and read back from ``source`` when a PyTorch engine
            is needed again — a new size to decide, or ``runner("torch")``.
    """

    def __init__(self, model: nn.Module, *, device: torch.device, source: Path | None = None,
                 calibration: Callable[[], list[torch.Tensor]] | None = None, engine: str | None = None,
                 log: Callable[[str], Any] | None = None, reloadable: bool = False) -> None:  # fmt: skip
        super().__init__()
        engine = engine or default_engine()
        if engine != "auto" and engine not in ENGINES:
            from ..errors import ConfigError

            raise ConfigError(f"--engine {engine}: choose auto or one of {', '.join(ENGINES)}")
        self.model, self.device, self.source, self.engine = model, device, source, engine
        self._calibration_fn = calibration
        self._calibration: list[torch.Tensor] | None = None
        self._runners: dict[str, nn.Module] = {}
        self.decisions: dict[int, Decision] = {}
        self._log = log or (lambda line: print(line, file=sys.stderr))
        self.reloadable, self.released = reloadable and source is not None, False
        for attr in ("arch", "heads", "multi_head", "in_channels", "build_args"):
            if hasattr(model, attr):
                setattr(self, attr, getattr(model, attr))

    @property
    def num_classes(self) -> int:
        return self.model.num_classes  # type: ignore[return-value]

    def runner(self, engine: str) -> nn.Module:
        """The module that runs ``engine`` (built once)."""
        if engine not in self._runners:
            self._restore()
            self._runners[engine] = build_runner(engine, self.model, device=self.device, source=self.source,
                                                 calibration=self.calibration)  # fmt: skip
        return self._runners[engine]

    def calibration(self) -> list[torch.Tensor]:
        """The checkpoint's calibration images (empty when it has none that load)."""
        if self._calibration is None:
            try:
                self._calibration = list(self._calibration_fn()) if self._calibration_fn else []
            except (FCNError, OSError, KeyError, ValueError):
                self._calibration = []
        return self._calibration

    def engine_for(self, x: torch.Tensor) -> str:
        """The engine that runs inputs shaped like ``x`` (deciding now if ``auto`` has not yet)."""
        if self.engine != "auto":
            return self.engine
        bucket = size_bucket(*x.shape[-2:])
        if bucket not in self.decisions:
            self.decisions[bucket] = self._decide(x, bucket)
            if self.decisions[bucket].reason != "small":
                self._log(self.decisions[bucket].summary())
            self._release_if_unused()
        return self.decisions[bucket].engine

    # -- the fp32 weights, dropped while only exported engines run ----------------------------------------

    def _release_if_unused(self) -> None:
        if not self.reloadable or self.released:
            return
        chosen = {d.engine for d in self.decisions.values()}
        if any(e.startswith("torch") for e in chosen):
            return
        for engine in chosen:  # built (exported, compiled lazily) while the weights are still here
            self.runner(engine)
        self._runners = {e: r for e, r in self._runners.items() if e in chosen}
        self.model.to("meta")
        self.released = True

    def _restore(self) -> None:
        if not self.released:
            return
        from ..runtime.checkpoint import load_state_dict_file

        assert self.source is not None
        self.model.load_state_dict(load_state_dict_file(self.source), assign=True)
        self.model.to(self.device)
        self.released = False

    def forward(self, x: torch.Tensor) -> Any:
        return self.runner(self.engine_for(x))(x)

    # -- deciding -------------------------------------------------------------------------------------------

    def _decide(self, x: torch.Tensor, bucket: int) -> Decision:
        """A cached decision (no model run at all: a later process starts straight on its engine), else
        "small" (fp32 PyTorch under MIN_FORWARD_S, not cached), else a measured one, cached."""
        key = self._key(bucket)
        path = self.cache_path()
        if key and path is not None:  # written atomically: read without the lock
            cached = _decision_of(_read_entries(path).get(key))
            if cached is not None:
                return cached
        self._restore()  # not cached: PyTorch is timed
        limit = MIN_FORWARD_S.get(self.device.type, 0.0)
        first = self._time(["torch"], x, rounds=ROUNDS, stop_above=10 * limit)["torch"]
        if first < limit:
            return Decision("torch", bucket, list(x.shape[-2:]), {"torch": first}, reason="small")
        with self._cache() as cache:  # locked while measuring: other ranks / processes wait, then read it
            decision = _decision_of(cache.get(key)) if key else None
            if decision is None:
                decision = self._measure(x, bucket)
                if key:
                    cache[key] = {"decision": asdict(decision), "machine": fingerprint(self.device)}
        return decision

    def _measure(self, x: torch.Tensor, bucket: int) -> Decision:
        decision = Decision("torch", bucket, list(x.shape[-2:]))
        if not self.calibration():  # no checkpoint data: the images being segmented calibrate
            self._calibration = [x[i].detach().cpu() for i in range(x.shape[0])]
        images = self.calibration()[:4]
        with torch.inference_mode():
            refs = [self.runner("torch")(im.unsqueeze(0).to(self.device)) for im in images]
        candidates = ["torch"]
        for engine in ENGINES[1:]:
            reason = eligible(engine, self.device, source=self.source)
            try:  # an optional engine that fails to build or run is left out, saying why, never fatal
                if reason is None and PRECISION[engine] != "fp32" and not self._agrees(engine, refs, images, decision):
                    continue
                if reason is None:
                    self.runner(engine)
            except Exception as e:
                reason = first_line(e) if isinstance(e, FCNError) else f"{type(e).__name__}: {first_line(e)}"
                self._runners.pop(engine, None)
            if reason is not None:
                decision.skipped[engine] = reason
                continue
            candidates.append(engine)
        decision.seconds = self._time(candidates, x)
        decision.engine = min(decision.seconds, key=decision.seconds.__getitem__)
        # the losers' sessions and compiled graphs go (a VGG16 FCN holds ~0.5 GB per engine)
        self._runners = {e: r for e, r in self._runners.items() if e in ("torch", decision.engine)}
        return decision

    def _agrees(self, engine: str, refs: list[Any], images: list[torch.Tensor], decision: Decision) -> bool:
        """The accuracy guard: ``engine``'s labels agree with fp32's on ≥ AGREEMENT of the calibration pixels."""
        with torch.inference_mode():
            outs = [self.runner(engine)(im.unsqueeze(0).to(self.device)) for im in images]
        share = sum(agreement(r, o) for r, o in zip(refs, outs, strict=True)) / len(images)
        decision.agreement[engine] = round(share, 5)
        if share >= AGREEMENT:
            return True
        decision.skipped[engine] = f"label agreement with fp32 {share:.4f} < {AGREEMENT}"
        return False

    def _time(self, engines: list[str], x: torch.Tensor, *, rounds: int = ROUNDS,
              stop_above: float = math.inf) -> dict[str, float]:  # fmt: skip
        """The fastest of ``rounds`` round-robin timings per engine, after a warm-up call of each (compiles,
        prepacked weights); stops early once every engine's best exceeds ``stop_above`` seconds."""
        best = {e: math.inf for e in engines}
        with torch.inference_mode():
            for e in engines:
                self.runner(e)(x)
            for _ in range(rounds):
                for e in engines:
                    _sync(self.device)
                    t = time.perf_counter()
                    self.runner(e)(x)
                    _sync(self.device)
                    best[e] = min(best[e], time.perf_counter() - t)
                if min(best.values()) > stop_above:
                    break
        return {e: round(s, 5) for e, s in best.items()}

    # -- the cache beside the checkpoint ----------------------------------------------------------------------

    def cache_path(self) -> Path | None:
        """``CKPT.engine.json`` beside the checkpoint, or None without one."""
        return None if self.source is None else self.source.with_name(self.source.stem + ".engine.json")

    def _key(self, bucket: int) -> str | None:
        if self.source is None:
            return None
        from ..export.cache import file_sha256

        if not hasattr(self, "_source_sha"):
            self._source_sha = file_sha256(self.source)
        raw = json.dumps([self._source_sha, fingerprint(self.device)["id"], bucket])
        return hashlib.sha256(raw.encode()).hexdigest()[:24]

    @contextlib.contextmanager
    def _cache(self) -> Iterator[dict[str, Any]]:
        """The cache's entries, locked against other processes deciding for the same checkpoint, written back."""
        path = self.cache_path()
        if path is None:
            yield {}
            return
        try:
            lock = open(path.with_name(path.name + ".lock"), "a")  # held for the block below
        except OSError as e:
            self._log(f"engine auto: cannot cache the decision beside {self.source} ({e.strerror}); deciding in memory")
            yield {}
            return
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            entries = _read_entries(path)
            before = dict(entries)
            yield entries
            if entries != before:
                try:
                    with atomic_write(path, "w") as f:
                        json.dump({"entries": entries}, f, indent=1, sort_keys=True)
                except OSError as e:
                    self._log(f"engine auto: cannot write {path} ({e.strerror}); the decision stays in memory")


def _decision_of(entry: Any) -> Decision | None:
    """The cached entry's decision, or None when it is missing or not a valid decision."""
    try:
        decision = Decision(**entry["decision"])
    except (TypeError, KeyError):
        return None
    return decision if decision.engine in ENGINES else None


#: a cache file larger than this is not read (it holds a few hundred bytes per decision)
MAX_CACHE_BYTES = 1 << 20


def _read_entries(path: Path) -> dict[str, Any]:
    """The cache's entries; an unreadable, oversized or malformed file counts as empty (and is rewritten)."""
    try:
        if path.stat().st_size > MAX_CACHE_BYTES:
            return {}
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    entries = data.get("entries") if isinstance(data, dict) else None
    return entries if isinstance(entries, dict) else {}
