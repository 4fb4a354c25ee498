"""What building an engine costs and what it saves, on this machine: the numbers behind ``auto``'s choice to tune.

Before anything was measured here, each engine's speed-up over fp32 PyTorch and its build time come from a
conservative prior (:data:`PRIOR`: the speed-ups are below the ratios ``docs/PERFORMANCE.md`` measured, the build
times above them). Every measured decision records the engine's real speed-up and build seconds per GB of
weights in ``FCNSEG_HOME/engines/costs-MACHINE.json``; later estimates use the median of the last records, so
the rule learns this machine's numbers.

:func:`tuning_pays` is the rule: tune when the images still to come would save more than the tuning costs —
building the engine (nothing when its graph is already cached: only loading it), the accuracy guard, and the
side-by-side timing.
"""

from __future__ import annotations

import json
import logging
import statistics
from dataclasses import dataclass
from typing import Any

from ..errors import FCNError
from ..files import read_bytes
from ..home import home
from ..io import atomic_write

__all__ = ["PRIOR", "Estimate", "estimate", "net_saving", "record", "tuning_cost", "tuning_pays", "worth_tuning"]

log = logging.getLogger("fcnseg")

#: engine → (speed-up over fp32 PyTorch, build seconds fixed, build seconds per GB of weights) before any
#: measurement on this machine; reduced precisions only count where the CPU has their units (engines.eligible)
PRIOR: dict[str, tuple[float, float, float]] = {
    "torch": (1.0, 0.0, 0.0),
    "torch-bf16": (1.5, 0.5, 1.0),
    "torch-fp16": (1.5, 0.5, 1.0),
    "onnxruntime": (1.2, 10.0, 30.0),
    "onnxruntime-int8": (1.8, 20.0, 60.0),
    "openvino": (1.2, 12.0, 30.0),
    "openvino-bf16": (2.0, 15.0, 35.0),
    "openvino-int8": (2.5, 25.0, 70.0),
}
#: records kept per engine
_KEEP = 8


@dataclass(frozen=True)
class Estimate:
    """An engine's expected speed-up over fp32 PyTorch and the seconds it takes to have it ready."""

    engine: str
    speedup: float
    build_s: float


def _path(fingerprint_id: str) -> Any:
    return home() / "engines" / f"costs-{fingerprint_id}.json"


def _records(fingerprint_id: str) -> dict[str, list[dict[str, float]]]:
    try:
        data = json.loads(read_bytes(_path(fingerprint_id), limit=1 << 20, what="record"))
    except (FCNError, OSError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def estimate(engine: str, weights_gb: float, fingerprint_id: str, *, built: bool = False) -> Estimate:
    """``engine``'s estimate for a model of ``weights_gb`` on this machine (``built``: its graph is cached, so
    only loading it costs: a tenth of a build)."""
    speedup, fixed, per_gb = PRIOR.get(engine, (1.0, 30.0, 60.0))
    rows = [r for r in _records(fingerprint_id).get(engine, []) if isinstance(r, dict)]
    speeds = [float(r["speedup"]) for r in rows if isinstance(r.get("speedup"), (int, float))]
    builds = [float(r["build_s_per_gb"]) for r in rows if isinstance(r.get("build_s_per_gb"), (int, float))]
    if speeds:
        speedup = statistics.median(speeds)
    build = fixed + per_gb * weights_gb
    if builds:
        build = fixed / 2 + statistics.median(builds) * weights_gb
    return Estimate(engine, max(speedup, 1e-3), build / 10 if built else build)


def record(engine: str, fingerprint_id: str, *, speedup: float, build_s: float, weights_gb: float) -> None:
    """Remember a measured speed-up and build time (a read-only cache just does not remember)."""
    data = _records(fingerprint_id)
    rows = [r for r in data.get(engine, []) if isinstance(r, dict)][-(_KEEP - 1) :]
    rows.append({"speedup": round(speedup, 4), "build_s_per_gb": round(build_s / max(weights_gb, 1e-3), 3)})
    data[engine] = rows
    try:
        _path(fingerprint_id).parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(_path(fingerprint_id), "w") as f:
            json.dump(data, f, indent=1)
    except OSError:
        pass


def tuning_cost(est: Estimate, torch_s: float, guard_images: int = 4, rounds: int = 2) -> float:
    """Seconds to tune ``est.engine``: the build, the accuracy guard (``guard_images`` through both engines) and
    the side-by-side timing (``rounds`` of each, one warm-up of the engine)."""
    engine_s = torch_s / est.speedup
    return est.build_s + guard_images * (torch_s + engine_s) + (rounds + 1) * engine_s + rounds * torch_s


def net_saving(est: Estimate, torch_s: float, images_left: int | None, spent_s: float) -> float:
    """Seconds tuning ``est.engine`` now is expected to save, its cost paid (> 0: it pays).

    With ``images_left`` known: what they would save minus the cost. Unknown (a server, a library call): the PyTorch
    time ``spent_s`` already spent on such images minus the cost — the rent-or-buy rule, never more than twice the
    best choice in hindsight.
    """
    cost = tuning_cost(est, torch_s)
    if images_left is None:
        return spent_s - cost
    return images_left * (torch_s - torch_s / est.speedup) - cost


def tuning_pays(est: Estimate, torch_s: float, images_left: int | None, spent_s: float) -> tuple[bool, str]:
    """Whether tuning ``est.engine`` now repays itself (:func:`net_saving` > 0), and the arithmetic (one phrase)."""
    cost = tuning_cost(est, torch_s)
    saving = net_saving(est, torch_s, images_left, spent_s)
    if images_left is None:
        return saving > 0, (
            f"{spent_s:.1f} s spent in PyTorch vs {cost:.1f} s to tune {est.engine} (×{est.speedup:.2f} expected)"
        )
    return saving > 0, (
        f"{images_left} image(s) × {torch_s:.2f} s would save {saving + cost:.1f} s on {est.engine} "
        f"(×{est.speedup:.2f} expected) against {cost:.1f} s to tune it"
    )


def worth_tuning(estimates: list[Estimate], torch_s: float, images_left: int | None, spent_s: float) -> list[Estimate]:
    """The (at most two) engines of ``estimates`` whose tuning pays now, the largest expected saving first."""
    savings = [(net_saving(e, torch_s, images_left, spent_s), e) for e in estimates]
    for saving, est in savings:
        log.debug("engine auto: %s would save %.1f s net (×%.2f)", est.engine, saving, est.speedup)
    return [e for _, e in sorted((s for s in savings if s[0] > 0), key=lambda s: -s[0])[:2]]
