"""Which label values a set of masks holds, and the classic traps they reveal.

The traps: binary masks saved as 0/255, whose foreground 255 is read as "ignore" (metrics stuck at 0
or 100); a few stray values (a mask resized with interpolation, an antialiased brush) that create
classes of their own; classes that never occur. :class:`LabelStats` counts pixels per value and
remembers the first files holding each value, so every message names a file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .base import IGNORE_INDEX

__all__ = ["STRAY_SHARE", "LabelStats"]

#: a value holding less than this share of the labelled pixels, far above the others, is "stray"
STRAY_SHARE = 1e-3
_KEEP_FILES = 3


@dataclass
class LabelStats:
    """Pixel counts per label value 0…255 over the masks added, with the first files holding each."""

    pixels: np.ndarray = field(default_factory=lambda: np.zeros(256, np.int64))
    files: dict[int, list[str]] = field(default_factory=dict)
    masks: int = 0

    def add(self, mask: np.ndarray, name: str) -> None:
        """Count one mask (values 0…255) read from ``name``."""
        counts = np.bincount(np.asarray(mask, np.int64).ravel().clip(0, 255), minlength=256)
        self.pixels += counts
        self.masks += 1
        for v in np.flatnonzero(counts).tolist():
            seen = self.files.setdefault(v, [])
            if len(seen) < _KEEP_FILES:
                seen.append(name)

    @property
    def values(self) -> list[int]:
        """Label values present (255 included)."""
        return np.flatnonzero(self.pixels).tolist()

    def _where(self, v: int) -> str:
        names = self.files.get(v, [])
        return ", ".join(names) + (" …" if len(names) == _KEEP_FILES else "")

    def binary_problem(self) -> str | None:
        """A message when every mask holds only 0 and 255: 255 is "ignore", so such a foreground is lost."""
        if self.masks == 0 or IGNORE_INDEX not in self.values or not set(self.values) <= {0, IGNORE_INDEX}:
            return None
        return (
            f"every mask holds only the values 0 and 255 (e.g. {self.files[IGNORE_INDEX][0]}): 255 means 'ignore', "
            "so if it marks your foreground, the foreground is never learnt or scored (metrics stuck at 0 or 100); "
            "store the foreground as 1, or read the masks with binary=True (255 → class 1; "
            "-o binary=true in data check, data.options.binary in a config)"
        )

    def stray_values(self) -> list[int]:
        """Values holding < STRAY_SHARE of the labelled pixels that lie above every common value + 1."""
        labelled = self.pixels.copy()
        labelled[IGNORE_INDEX] = 0
        total = int(labelled.sum())
        if total == 0:
            return []
        rare = labelled < STRAY_SHARE * total
        common = np.flatnonzero((labelled > 0) & ~rare)
        top = int(common.max()) if common.size else -1
        return [v for v in np.flatnonzero((labelled > 0) & rare).tolist() if v > top + 1]

    def stray_problem(self) -> str | None:
        stray = self.stray_values()
        if not stray:
            return None
        parts = [f"{v} ({int(self.pixels[v])} px, in {self._where(v)})" for v in stray[:5]]
        more = f" and {len(stray) - 5} more" if len(stray) > 5 else ""
        return (
            f"label value(s) {'; '.join(parts)}{more} are rare and far above the common ones "
            f"(up to {max(v for v in self.values if v not in stray and v != IGNORE_INDEX)}): stray values from "
            "a resized or antialiased mask? Each would create a class of its own"
        )

    def absent_classes(self, classes: Sequence[str]) -> str | None:
        """A message naming the classes with no pixel at all (only when some class does have pixels)."""
        absent = [i for i in range(min(len(classes), IGNORE_INDEX)) if self.pixels[i] == 0]
        if not absent or len(absent) == len(classes):
            return None
        names = ", ".join(f"{i} ({classes[i]})" for i in absent[:10]) + (" …" if len(absent) > 10 else "")
        return f"{len(absent)} of {len(classes)} classes have no pixels here: {names}"

    def warnings(self, classes: Sequence[str]) -> list[str]:
        """Every trap found, one line each, for masks read with the class list ``classes``."""
        found = [self.binary_problem(), self.stray_problem(), self.absent_classes(classes)]
        return [w for w in found if w]
