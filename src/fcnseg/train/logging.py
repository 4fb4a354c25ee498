"""Run logs: a CSV of scalars, TensorBoard scalars, and the learning-curve PNG."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from ..io import atomic_write

__all__ = ["RunLogger", "curves_figure", "loss_label", "plot_curves", "read_log"]

#: ``train_s``: seconds spent in training steps so far (evaluation and checkpoints left out; a resumed run goes on
#: from the seconds its training state recorded) — the wall-time axis of the paper's Fig. 5
FIELDS = ["step", "loss", "lr", "images_per_s", "pixel_accuracy", "mean_accuracy", "mean_iu", "fw_iu", "train_s"]


class RunLogger:
    """Appends rows to ``run_dir/log.csv`` and writes TensorBoard scalars to ``run_dir/tb``."""

    def __init__(self, run_dir: Path, *, enabled: bool = True, tensorboard: bool = True) -> None:
        self.enabled = enabled
        self.path = run_dir / "log.csv"
        self.writer = None
        if not enabled:
            return
        if not self.path.exists():
            with self.path.open("w", newline="") as f:
                csv.writer(f).writerow(FIELDS)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(run_dir / "tb"))
            except ImportError:  # tensorboard not installed: CSV only
                self.writer = None

    def log(self, step: int, **scalars: Any) -> None:
        if not self.enabled:
            return
        with self.path.open("a", newline="") as f:
            csv.writer(f).writerow([step] + [scalars.get(k, "") for k in FIELDS[1:]])
        if self.writer is not None:
            for k, v in scalars.items():
                if isinstance(v, (int, float)):
                    self.writer.add_scalar(k, v, step)

    def truncate_after(self, step: int) -> None:
        """Drop rows logged after ``step`` (a resumed run repeats them)."""
        if not self.enabled or not self.path.exists():
            return
        with self.path.open(newline="") as f:
            rows = list(csv.reader(f))
        keep = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= step]
        with atomic_write(self.path, "w") as f:
            csv.writer(f).writerows(keep)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_log(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def plot_curves(run_dir: Path, loss: str = "ce", normalize: bool = False) -> Path:
    """``curves.png``: :func:`curves_figure` of the run (``train.loss`` and ``train.normalize``), written atomically."""
    fig = curves_figure(run_dir, loss, normalize)
    out = run_dir / "curves.png"
    with atomic_write(out) as f:
        fig.savefig(f, format="png", dpi=100)
    return out


def curves_figure(run_dir: Path, loss_kind: str = "ce", normalize: bool = False) -> Any:
    """Training loss and validation mean IU against the optimizer step, both axes labelled with units (the loss's
    from the run's ``train.loss`` and ``train.normalize``, which the caller has: nothing is read back from disk)."""
    rows = read_log(run_dir / "log.csv")
    loss = [(int(r["step"]), float(r["loss"])) for r in rows if r["loss"]]
    miu = [(int(r["step"]), float(r["mean_iu"])) for r in rows if r["mean_iu"]]
    from ..viz import figure

    fig = figure((9, 3.4))
    ax = fig.subplots(1, 2)
    if loss:
        ax[0].plot(*zip(*loss, strict=True), lw=1)
    ax[0].set(title="training loss", xlabel="optimizer step", ylabel=loss_label(loss_kind, normalize))
    if miu:
        ax[1].plot(*zip(*miu, strict=True), marker="o")
    ax[1].set(
        title="validation mean IU", xlabel="optimizer step", ylabel="mean IU (0 = none, 1 = perfect)", ylim=(0, 1)
    )
    for a in ax:
        a.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def loss_label(kind: str, normalize: bool) -> str:
    """The loss axis's label with its unit: the loss, and whether it is a mean or a sum over pixels."""
    name = "cross-entropy (nats)" if kind == "ce" else f"{kind} loss"
    return f"{name}, {'mean per pixel' if normalize else 'summed over pixels'}"
