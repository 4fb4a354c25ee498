"""Stopping on a validation plateau (``train.early_stop``), resumable.

:class:`Plateau` watches one validation score after each evaluation. A score that beats the best so far by at
least ``min_delta`` is a gain and resets the count; ``patience`` evaluations in a row without a gain end the run
(at step ``min_steps`` or later: a net on its starting plateau has not converged).
The count, the best score and where it was reached travel in the training state, so a resumed run continues
the same count, and a run that already stopped stays stopped. Why a run ended is written to ``summary.json``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..config import EarlyStop, RunConfig
from ..errors import CheckpointError
from ..io import write_json

__all__ = ["Plateau", "selection_metric", "write_summary"]


def selection_metric(cfg: RunConfig) -> str:
    """The validation score that picks ``best.safetensors``: the one early stopping watches, else mean IU."""
    return cfg.train.early_stop.metric if cfg.train.early_stop else "mean_iu"


@dataclass
class Plateau:
    """The early-stopping count of one run (``rule`` None: never stops)."""

    rule: EarlyStop | None
    best: float = -math.inf  # the watched score at the last gain
    best_step: int = 0
    stale: int = 0  # evaluations since the last gain
    stopped_at: int | None = None  # the step the run ended at, once it has

    def update(self, value: float, step: int) -> bool:
        """Count the evaluation at ``step``; True when it ends the run."""
        if self.rule is None or self.stopped_at is not None:
            return self.stopped_at is not None
        if value >= self.best + self.rule.min_delta and value > self.best:
            self.best, self.best_step, self.stale = value, step, 0
        else:
            self.stale += 1
        if self.stale >= self.rule.patience and step >= self.rule.min_steps:
            self.stopped_at = step
        return self.stopped_at is not None

    def reason(self, max_iter: int) -> str:
        """One line: why the run ended (or that it ran its steps)."""
        if self.stopped_at is None or self.rule is None:
            return f"ran its {max_iter} steps (train.max_iter)"
        r = self.rule
        return (
            f"stopped early at step {self.stopped_at} of {max_iter}: {r.metric} gained less than {r.min_delta:g} "
            f"in {r.patience} evaluation(s) (best {self.best:.4f} at step {self.best_step})"
        )

    def state(self) -> dict[str, Any]:
        """What the training state keeps (``stopped_at`` None while the run goes on)."""
        return {
            "best": self.best if math.isfinite(self.best) else None,
            "best_step": self.best_step,
            "stale": self.stale,
            "stopped_at": self.stopped_at,
        }

    def restore(self, state: Any, where: Any) -> None:
        """Continue the count a training state recorded (none recorded: a fresh count); a stop recorded before
        ``min_steps`` is lifted (the floor was raised since)."""
        if state is None or self.rule is None:
            return
        ok = isinstance(state, dict) and all(
            isinstance(state.get(k), int) and not isinstance(state.get(k), bool) and state[k] >= 0
            for k in ("best_step", "stale")
        )
        best, stopped = state.get("best") if ok else None, state.get("stopped_at") if ok else None
        ok = ok and (best is None or (isinstance(best, (int, float)) and math.isfinite(best)))
        ok = ok and (stopped is None or (isinstance(stopped, int) and stopped >= 0))
        if not ok:
            raise CheckpointError(f"{where}: malformed training state: early_stop {state!r}")
        self.best = -math.inf if best is None else float(best)
        if stopped is not None and stopped < self.rule.min_steps:
            stopped = None  # stopped before a floor added since: the run goes on from there, as the floor says
        self.best_step, self.stale, self.stopped_at = state["best_step"], state["stale"], stopped


def write_summary(run_dir: Path, plateau: Plateau, *, steps: int, max_iter: int, metric: str, best: float) -> Path:
    """``run_dir/summary.json``: why the run ended, its steps, and the best checkpoint's watched score."""
    data = {
        "end": "early_stop" if plateau.stopped_at is not None else "max_iter",
        "reason": plateau.reason(max_iter),
        "steps": steps,
        "max_iter": max_iter,
        "metric": metric,
        "best": best if math.isfinite(best) else None,
        "early_stop": asdict(plateau.rule) if plateau.rule else None,
        "plateau": plateau.state(),
    }
    return write_json(run_dir / "summary.json", data)
