"""Measuring engines side by side for ``auto`` (:class:`~fcnseg.inference.auto.AutoEngine` inherits it): each
candidate built (or taken from the background builds), held to the accuracy guard, and timed round-robin beside
PyTorch on the input at hand."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import torch

from ..errors import FCNError, first_line
from ..runtime.hardware import fingerprint
from .costs import record
from .decision import AGREEMENT, ROUNDS, Decision, agreement
from .decision import sync as _sync
from .engines import ENGINES, eligible

if TYPE_CHECKING:
    from torch import nn

    from .pending import Builds

__all__ = ["Measuring"]


def copied(out: Any) -> Any:
    """A copy of a model's output (a tensor or a dict of them), safe from a caller's in-place changes."""
    if isinstance(out, torch.Tensor):
        return out.detach().clone()
    if isinstance(out, dict):
        return {k: copied(v) for k, v in out.items()}
    return out


class Measuring:
    """The measuring half of :class:`~fcnseg.inference.auto.AutoEngine` (which provides the attributes below)."""

    model: nn.Module
    device: torch.device
    source: Any
    _calibration: list[torch.Tensor] | None
    _runners: dict[str, Any]
    _built: Builds | None
    _refs: list[Any] | None
    _agreed: dict[str, float]
    _torch_ran: tuple[torch.Tensor, float, Any] | None  # the input PyTorch last ran, its seconds and its output

    def calibration(self) -> list[torch.Tensor]:  # the host's: its calibration images
        raise NotImplementedError

    def runner(self, engine: str) -> Any:  # the host's: the module running ``engine``
        raise NotImplementedError

    def _measure(
        self, x: torch.Tensor, bucket: int, names: list[str], *, tuning: bool = False, baseline: Decision | None = None
    ) -> Decision:
        decision = Decision("torch", bucket, list(x.shape[-2:]))
        self._calibrate_with(x)
        candidates = ["torch"]
        for name in names:
            reason = self._ready(name, decision, baseline)
            if reason is None:
                candidates.append(name)
            else:
                decision.skipped[name] = reason
        b = baseline.engine if baseline is not None else None
        scale = b in candidates and baseline is not None and baseline.seconds.get("torch") and baseline.seconds.get(b)
        timed = [c for c in candidates if not (scale and c == "torch")]
        seen = self._torch_ran  # the forward PyTorch just ran on this input counts as its first round
        known = {"torch": seen[1]} if seen and seen[0].shape == x.shape and not (tuning or baseline) else {}
        warm = {b} if baseline is not None and b in timed else set()  # it has been running the job's images
        decision.seconds = self._time(timed, x, ROUNDS + tuning, known=known, warm=warm)
        if scale:  # PyTorch's time at x, from its ratio to the engine it was measured beside (not run again)
            assert baseline is not None and b is not None
            ratio = baseline.seconds["torch"] / baseline.seconds[b]
            decision.seconds["torch"] = round(decision.seconds[b] * ratio, 5)
        decision.engine = min(decision.seconds, key=decision.seconds.__getitem__)
        self._record_costs(decision)
        self._runners = {e: r for e, r in self._runners.items() if e in ("torch", decision.engine)}
        return decision

    def _calibrate_with(self, x: torch.Tensor) -> None:
        """No training images: the images being segmented calibrate (int8) and guard."""
        if not self.calibration():
            self._calibration = [x[i].detach().cpu() for i in range(x.shape[0])]
            seen = self._torch_ran
            if self._refs is None and seen is not None and seen[0] is x and x.shape[0] == 1:
                self._refs = [copied(seen[2])]  # fp32's output on x, just computed: not run again for the guard

    def _ready(self, name: str, decision: Decision, baseline: Decision | None) -> str | None:
        """Have engine ``name`` built (or take it from the finished background builds) and guarded; None when it
        is ready, else why it is left out (an engine failing to build, load or run is never fatal)."""
        reason = eligible(name, self.device, exportable=self.source is not None)
        if reason is not None:
            return reason
        built = self._built
        try:
            if built is not None and name in built.errors:
                raise built.errors[name]
            t = time.perf_counter()
            self.runner(name)
            seconds = round(time.perf_counter() - t, 3)
            if built is not None and name in built.seconds:
                seconds = built.seconds[name]
            elif baseline is not None and name in baseline.build_s:
                seconds = baseline.build_s[name]
            decision.build_s[name] = seconds
            if ENGINES[name].precision != "fp32" and not self._agrees(name, decision):
                return decision.skipped.pop(name)
        except Exception as e:
            self._runners.pop(name, None)
            return first_line(e) if isinstance(e, FCNError) else f"{type(e).__name__}: {first_line(e)}"
        return None

    def _agrees(self, engine: str, decision: Decision) -> bool:
        """The accuracy guard: ``engine``'s labels agree with fp32's on ≥ AGREEMENT of the calibration pixels
        (once per engine; fp32's outputs computed once)."""
        if engine not in self._agreed:
            images = self.calibration()[:4]
            with torch.inference_mode():
                if self._refs is None:
                    self._refs = [self.runner("torch")(im.unsqueeze(0).to(self.device)) for im in images]
                outs = [self.runner(engine)(im.unsqueeze(0).to(self.device)) for im in images]
            share = sum(agreement(r, o) for r, o in zip(self._refs, outs, strict=True)) / len(images)
            if share < AGREEMENT:
                decision.agreement[engine] = round(share, 5)
                decision.skipped[engine] = f"label agreement with fp32 {share:.4f} < {AGREEMENT}"
                self._runners.pop(engine, None)
                return False
            self._agreed[engine] = round(share, 5)
        decision.agreement[engine] = self._agreed[engine]
        return True

    def _time(
        self,
        engines: list[str],
        x: torch.Tensor,
        rounds: int = ROUNDS,
        known: dict[str, float] | None = None,
        warm: set[str] | frozenset[str] = frozenset(),
    ) -> dict[str, float]:
        """The fastest of ``rounds`` round-robin timings per engine, after a warm-up call of each (compiles,
        prepacked weights): a noisy machine slows every engine alike. An engine of ``known`` has run ``x`` already
        and taken that many seconds: no warm-up, and that run is its first round; one of ``warm`` has run inputs
        of this bucket (it needs no warm-up)."""
        known = {e: s for e, s in (known or {}).items() if e in engines}
        best = {e: known.get(e, math.inf) for e in engines}
        with torch.inference_mode():
            for e in engines:
                if e not in known and e not in warm:
                    self.runner(e)(x)
            for i in range(rounds):
                for e in engines:
                    if e in known and i == rounds - 1:
                        continue
                    _sync(self.device)
                    t = time.perf_counter()
                    self.runner(e)(x)
                    _sync(self.device)
                    best[e] = min(best[e], time.perf_counter() - t)
        return {e: round(s, 5) for e, s in best.items()}

    def _record_costs(self, decision: Decision) -> None:
        torch_s = decision.seconds.get("torch")
        if not torch_s:
            return
        gb = sum(p.numel() * p.element_size() for p in self.model.parameters()) / 1e9
        fid = fingerprint(self.device)["id"]
        for name, seconds in decision.seconds.items():
            if name != "torch" and seconds > 0:
                record(name, fid, speedup=torch_s / seconds, build_s=decision.build_s.get(name, 0.0), weights_gb=gb)
