"""``--engine auto``: PyTorch at once, another engine only when the work in hand repays building it.

The first image of a size bucket (images of about the same pixel count, :func:`size_bucket`) runs on fp32
PyTorch — the user's first mask does not wait for any export — and its time decides the rest
(:func:`~fcnseg.inference.costs.tuning_pays`): when the images still to come (:meth:`AutoEngine.expect`; unknown
in a server, where the PyTorch time already spent counts instead) would save more than building, checking and
timing the engine expected to be fastest here costs, that engine is built (in a child process: a crash or an
out-of-memory there cannot end this one), held to the accuracy guard (reduced precisions must give fp32's label on
≥ :data:`AGREEMENT` of the calibration pixels) and timed against PyTorch on the image at hand; the faster one
runs the rest. An exported engine is built in a background thread (:mod:`~fcnseg.inference.pending`) while the
images go on, on an engine ready at once (PyTorch bf16) when one pays, whose decision is interim until the build is
done and measured beside it. Forward passes under :data:`MIN_FORWARD_S` never tune. ``fcnseg tune``
(:meth:`AutoEngine.tune`) measures every eligible engine for given sizes on request.

A measured decision is kept in ``FCNSEG_HOME`` with the model file's cache entry, keyed by this machine's
fingerprint and the bucket, so later processes start on it (when their own work repays loading it). An engine that
fails on an input falls back to PyTorch for that input with one warning, and the decision is revised. Messages go
to the ``fcnseg`` logger.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError, FCNError, first_line
from ..runtime.hardware import fingerprint
from .costs import Estimate, estimate, tuning_pays, worth_tuning
from .decision import AGREEMENT, Decision, agreement, size_bucket
from .decision import sync as _sync
from .engines import ENGINES, GRAPH_KIND, build_runner, default_engine, eligible
from .measuring import Measuring
from .pending import Builds

__all__ = ["AGREEMENT", "MIN_FORWARD_S", "AutoEngine", "Decision", "agreement", "size_bucket"]

log = logging.getLogger("fcnseg")

#: below this fp32 PyTorch time per forward pass ``auto`` keeps fp32 PyTorch without tuning
MIN_FORWARD_S = {"cpu": 0.05, "cuda": 0.002}


class AutoEngine(Measuring, nn.Module):
    """Runs ``model`` on the engine ``auto`` chose for each input's size bucket (or on a forced engine).

    Args:
        model: the FCN (in eval mode, on ``device``).
        device: where the PyTorch engines run.
        source: the file the model's weights came from (a checkpoint, or bare weights): exported engines are made
            from it and cached under ``FCNSEG_HOME`` by its content; None: PyTorch engines only.
        calibration: calibration images (preprocessed ``(C, H, W)``), called at most once; None or a failure: the
            images being segmented calibrate.
        engine: ``"auto"`` or one name of :data:`~fcnseg.inference.engines.ENGINES`; None: ``FCNSEG_ENGINE``,
            else ``"auto"``.
        reloadable: ``model``'s weights are exactly ``source``'s tensors: while only exported engines run, the fp32
            weights are dropped (the model moves to the meta device) and read back when PyTorch is needed again.
    """

    #: exported engines are built in a thread while the job goes on on PyTorch (False: the job waits for them)
    background = True

    def __init__(
        self,
        model: nn.Module,
        *,
        device: torch.device,
        source: Path | None = None,
        calibration: Callable[[], list[torch.Tensor]] | None = None,
        engine: str | None = None,
        reloadable: bool = False,
    ) -> None:
        super().__init__()
        engine = engine or default_engine()
        if engine != "auto" and engine not in ENGINES:
            raise ConfigError(f"--engine {engine}: choose auto or one of {', '.join(ENGINES)}")
        self.model, self.device, self.source, self.engine = model, device, source, engine
        self._calibration_fn = calibration
        self._calibration: list[torch.Tensor] | None = None
        self._runners: dict[str, nn.Module] = {}
        self._store: Any = None
        self.decisions: dict[int, Decision] = {}
        self.images_left: int | None = None  # forward passes still to come (expect()); None: unknown
        self._spent: dict[int, float] = {}  # PyTorch seconds spent per undecided bucket
        self._pending: dict[int, Builds] = {}  # exported engines being built for a bucket while the job goes on
        self._built: Builds | None = None  # the finished builds a measurement takes its runners from
        self._refs: list[Any] | None = None  # fp32 outputs on the calibration images (the accuracy guard's)
        self._agreed: dict[str, float] = {}  # engines that passed the guard, and their agreement
        self._torch_ran: tuple[torch.Tensor, float, Any] | None = None  # PyTorch's last input, seconds, output
        self.reloadable, self.released = reloadable and source is not None, False
        for attr in ("arch", "heads", "multi_head", "in_channels", "build_args"):
            if hasattr(model, attr):
                setattr(self, attr, getattr(model, attr))

    @property
    def num_classes(self) -> int:
        return self.model.num_classes  # type: ignore[return-value]

    def expect(self, forward_passes: int | None) -> None:
        """Say how many forward passes are still to come (a batch job's images): what a faster engine could save."""
        self.images_left = forward_passes

    @property
    def store(self) -> Any:
        """The model file's cache entry (:class:`~fcnseg.inference.store.GraphStore`), or None without a file."""
        if self._store is None and self.source is not None:
            from .store import GraphStore

            self._store = GraphStore(self.source)
        return self._store

    def runner(self, engine: str) -> nn.Module:
        """The module that runs ``engine`` (built once)."""
        if engine not in self._runners:
            self._restore()
            store = self.store if ENGINES[engine].exported else None
            if ENGINES[engine].exported and store is None:
                raise ConfigError(
                    f"--engine {engine}: runs a graph exported from a checkpoint file; this model came without one"
                )
            self._runners[engine] = build_runner(
                engine, self.model, device=self.device, store=store, calibration=self.calibration
            )
        return self._runners[engine]

    def calibration(self) -> list[torch.Tensor]:
        """The calibration images (empty when there are none that load)."""
        if self._calibration is None:
            try:
                self._calibration = list(self._calibration_fn()) if self._calibration_fn else []
            except (FCNError, OSError, KeyError, ValueError) as e:
                log.debug("no calibration images (%s); the images being segmented calibrate", first_line(e))
                self._calibration = []
        return self._calibration

    # -- running --------------------------------------------------------------------------------------------------

    def forward(self, x: torch.Tensor) -> Any:
        if self.engine != "auto":
            return self.runner(self.engine)(x)
        if self.images_left is not None:
            self.images_left = max(0, self.images_left - 1)
        bucket = size_bucket(*x.shape[-2:])
        if bucket in self._pending and self._pending[bucket].done():
            self._finish(x, bucket)
        if bucket not in self.decisions:
            return self._undecided(x, bucket)
        engine = self.decisions[bucket].engine
        try:
            return self.runner(engine)(x)
        except Exception as e:  # never worse than PyTorch: this input falls back, the decision is revised
            if engine == "torch":
                raise
            self._fell_back(bucket, engine, e)
            return self.runner("torch")(x)

    def engine_for(self, x: torch.Tensor) -> str:
        """The engine that runs the next input shaped like ``x`` (PyTorch until a bucket has a decision)."""
        if self.engine != "auto":
            return self.engine
        decision = self.decisions.get(size_bucket(*x.shape[-2:]))
        return decision.engine if decision else "torch"

    def _timed_torch(self, x: torch.Tensor) -> tuple[Any, float]:
        self._restore()
        _sync(self.device)
        t = time.perf_counter()
        out = self.runner("torch")(x)
        _sync(self.device)
        self._torch_ran = (x, time.perf_counter() - t, out)
        return out, self._torch_ran[1]

    def _undecided(self, x: torch.Tensor, bucket: int) -> Any:
        """A bucket without a decision: PyTorch runs this input (nothing waits for an engine), and its time says
        whether the rest is worth more: a cached decision whose engine repays loading, or tuning that repays itself.
        A job with nothing left to come touches no cache at all."""
        out, seconds = self._timed_torch(x)
        self._spent[bucket] = self._spent.get(bucket, 0.0) + seconds
        if bucket in self._pending or self.images_left == 0 or self._use_cached(bucket, seconds):
            return out
        if seconds < MIN_FORWARD_S.get(self.device.type, 0.0):
            self.decisions[bucket] = Decision("torch", bucket, list(x.shape[-2:]), {"torch": seconds}, reason="small")
            return out
        worth = self._worth_tuning(seconds, self._spent[bucket])
        if not worth:
            return out
        names = [e.engine for e in worth]
        reason = tuning_pays(worth[0], seconds, self.images_left, self._spent[bucket])[1]
        built = set(self._built_graphs())
        later = [n for n in names if ENGINES[n].exported and n not in built] if self.background else []
        now = [n for n in names if n not in later]
        if now:  # measured first, alone on the machine; it runs the images while the others build (an interim)
            self._tune(x, bucket, now, reason=reason, keep=not later)
        if later:
            self._calibrate_with(x)  # the calibration images read here, not by the build thread
            self._pending[bucket] = Builds(later, reason).start(self._build)
        return out

    def _build(self, name: str) -> nn.Module:
        """``name``'s runner, built off the main thread (:class:`~fcnseg.inference.pending.Builds`)."""
        return build_runner(name, self.model, device=self.device, store=self.store, calibration=self.calibration)

    def _finish(self, x: torch.Tensor, bucket: int) -> None:
        """The bucket's background builds are done: guard and time them against the engine running now."""
        builds = self._pending.pop(bucket)
        self._runners.update(builds.runners)
        interim = self.decisions.get(bucket)
        names = builds.engines + ([interim.engine] if interim and interim.engine != "torch" else [])
        self._built = builds
        try:
            self._tune(x, bucket, names, reason=builds.reason + ", built while the job went on", baseline=interim)
        finally:
            self._built = None

    def _estimates(self) -> list[Estimate]:
        """Every eligible engine's expected speed-up and cost to have it ready (cheap when its graph is cached)."""
        exportable = self.source is not None
        names = [e for e in ENGINES if e != "torch" and eligible(e, self.device, exportable=exportable) is None]
        if not names:
            return []
        gb = sum(p.numel() * p.element_size() for p in self.model.parameters()) / 1e9
        fid = fingerprint(self.device)["id"]
        built = set(self._built_graphs())
        return [estimate(e, gb, fid, built=e in built) for e in names]

    def _worth_tuning(self, torch_s: float, spent_s: float) -> list[Estimate]:
        """The (at most two) engines whose tuning pays now, the largest expected saving first."""
        return worth_tuning(self._estimates(), torch_s, self.images_left, spent_s)

    def _built_graphs(self) -> list[str]:
        """Exported engines whose graph is already in the cache (loading them costs little)."""
        store = self.store
        if store is None or not store.root.is_dir():
            return []
        kinds = {p.name for p in store.root.iterdir() if (p / "record.json").is_file()}
        return [e for e, kind in GRAPH_KIND.items() if kind in kinds]

    # -- measuring ------------------------------------------------------------------------------------------------

    def tune(self, sizes: list[tuple[int, int]], engines: list[str] | None = None) -> list[Decision]:
        """Measure ``engines`` (default: every eligible one) at each of ``sizes`` and keep the decisions
        (``fcnseg tune``): the work of many later jobs, paid now."""
        out = []
        for h, w in sizes:
            x = torch.zeros(1, getattr(self.model, "in_channels", 3), h, w, device=self.device)
            if self.calibration():
                x = torch.nn.functional.interpolate(self.calibration()[0][None].to(self.device), size=(h, w))
            names = engines or [e for e in ENGINES if e != "torch"]
            out.append(self._tune(x, size_bucket(h, w), names, reason="fcnseg tune"))
        return out

    def _tune(
        self,
        x: torch.Tensor,
        bucket: int,
        names: list[str],
        *,
        reason: str,
        baseline: Decision | None = None,
        keep: bool = True,
    ) -> Decision:
        """Build, guard and time ``names`` against PyTorch on ``x``; take the fastest for the bucket, and ``keep``
        it for later processes (not an interim decision, made while other engines build)."""
        store = self.store
        with store.lock("decide") if store is not None else contextlib.nullcontext():
            cached = self._cached(bucket)
            if cached is not None and reason != "fcnseg tune":
                self.decisions[bucket] = cached
                self._pending.pop(bucket, None)  # another process decided meanwhile: its builds still finish
                return cached
            decision = self._measure(x, bucket, names, tuning=reason == "fcnseg tune", baseline=baseline)
            decision.reason = f"{reason}; " + ", ".join(f"{k} {v:.3f}s" for k, v in decision.seconds.items())
            self.decisions[bucket] = decision
            if keep:
                self._remember(decision)
        log.info(decision.summary())
        self._release_if_unused()
        return decision

    # -- decisions kept in FCNSEG_HOME ----------------------------------------------------------------------------

    def _key(self, bucket: int) -> str:
        return f"{fingerprint(self.device)['id']}/{bucket}"

    def _cached(self, bucket: int) -> Decision | None:
        store = self.store
        if store is None:
            return None
        entry = store.read("decisions.json").get(self._key(bucket))
        try:
            decision = Decision(**entry)  # type: ignore[arg-type]
        except TypeError:
            return None
        return decision if decision.engine in ENGINES else None

    def _use_cached(self, bucket: int, torch_s: float) -> bool:
        """Take the cached decision for ``bucket`` when one exists and the work left repays loading its engine."""
        cached = self._cached(bucket) if self.source is not None else None
        if cached is None:
            return False
        if cached.engine != "torch":
            engine_s = cached.seconds.get(cached.engine, torch_s)
            load = cached.build_s.get(cached.engine, 0.0) / 10 + 2 * engine_s
            left, spent = self.images_left, self._spent.get(bucket, 0.0)
            if (left is not None and left * (torch_s - engine_s) <= load) or (left is None and spent < load):
                return False  # too little work (yet) to load it: PyTorch for now; the cached decision stays
        self.decisions[bucket] = cached
        log.debug(cached.summary() + " (cached)")
        self._release_if_unused()
        return True

    def _remember(self, decision: Decision) -> None:
        store = self.store
        if store is None:
            return
        try:
            with store.update("decisions.json") as entries:
                entries[self._key(decision.bucket)] = asdict(decision)
        except OSError as e:
            log.warning(
                "engine auto: cannot keep the decision in %s (%s); it stays in this process", store.root, e.strerror
            )

    def _fell_back(self, bucket: int, engine: str, error: BaseException) -> None:
        why = first_line(error) if isinstance(error, FCNError) else f"{type(error).__name__}: {first_line(error)}"
        log.warning(
            "engine %s failed on a %s-px input (%s); PyTorch runs it, and auto uses PyTorch for such "
            "inputs from now on",
            engine,
            bucket,
            why[:200],
        )
        old = self.decisions[bucket]
        self.decisions[bucket] = Decision(
            "torch",
            bucket,
            old.measured_at,
            old.seconds,
            old.agreement,
            {**old.skipped, engine: f"failed at run time: {why[:200]}"},
            old.build_s,
            reason=f"{engine} failed",
        )
        self._runners.pop(engine, None)
        self._remember(self.decisions[bucket])

    # -- the fp32 weights, dropped while only exported engines run ----------------------------------------

    def _release_if_unused(self) -> None:
        if not self.reloadable or self.released or not self.decisions or self._pending:
            return
        chosen = {d.engine for d in self.decisions.values()}
        if any(not ENGINES[e].exported for e in chosen):
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
