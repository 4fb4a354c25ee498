"""What ``auto`` decides per size bucket, and the measures it decides by: label agreement with fp32 and the time
of each engine."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["AGREEMENT", "ROUNDS", "Decision", "agreement", "size_bucket", "sync"]

#: a reduced precision must give fp32's label on at least this share of calibration pixels
AGREEMENT = 0.995


#: timed rounds per engine (after one warm-up call each; PyTorch, which has just run the input, is not warmed up
#: again); the fastest round counts. ``fcnseg tune`` (work paid on request) times one more.
ROUNDS = 2


def size_bucket(h: int, w: int) -> int:
    """The bucket of an ``h × w`` input: the power of two at or above ``sqrt(h·w)`` (at least 64)."""
    return max(64, 1 << math.ceil(math.log2(max(1.0, math.sqrt(h * w)))))


@dataclass
class Decision:
    """What ``auto`` runs for one bucket, and the measurements behind it."""

    engine: str
    bucket: int
    measured_at: list[int]  # the (H, W) the engines were timed at
    seconds: dict[str, float] = field(default_factory=dict)  # fastest timed round per engine
    agreement: dict[str, float] = field(default_factory=dict)  # label agreement with fp32 (reduced precisions)
    skipped: dict[str, str] = field(default_factory=dict)  # engines not tried, and why
    build_s: dict[str, float] = field(default_factory=dict)  # seconds to have each tried engine ready
    reason: str = ""

    def summary(self) -> str:
        times = ", ".join(f"{k} {v:.3f}s" for k, v in sorted(self.seconds.items(), key=lambda kv: kv[1]))
        left_out = "; ".join(f"{k} left out: {v}" for k, v in sorted(self.skipped.items()))
        return f"engine auto: {self.engine} for ~{self.bucket}px images ({self.reason or times})" + (
            f"; {left_out}" if left_out else ""
        )


def agreement(ref: Any, out: Any) -> float:
    """Share of pixels (over all heads) where ``out``'s argmax equals ``ref``'s."""
    refs = list(ref.values()) if isinstance(ref, dict) else [ref]
    outs = list(out.values()) if isinstance(out, dict) else [out]
    same = sum(int((r.argmax(1) == o.float().argmax(1)).sum()) for r, o in zip(refs, outs, strict=True))
    return same / max(1, sum(r.argmax(1).numel() for r in refs))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
