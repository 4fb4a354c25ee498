"""What an exported graph takes and gives, read from the FCN it came from; the base of the runtime modules.

An fcnseg FCN records it (``arch``, ``heads``, ``multi_head``, ``in_channels``: set by ``get_model``); any
other module (torchvision's own FCN in ``fcnseg bench``, a user's net) is taken as one RGB input and one
score output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

__all__ = ["GraphIO", "RuntimeModule", "graph_io"]


@dataclass(frozen=True)
class GraphIO:
    """The inputs and outputs of a model's graph."""

    arch: str
    in_channels: int = 3
    heads: dict[str, int] = field(default_factory=lambda: {"": 0})
    multi_head: bool = False

    @property
    def output_names(self) -> list[str]:
        return [f"scores_{h}" for h in self.heads] if self.multi_head else ["scores"]


def graph_io(model: nn.Module) -> GraphIO:
    """``model``'s graph interface: an FCN's own record, or one RGB input and one output for other modules."""
    from ..models import FCN

    if isinstance(model, FCN):
        return GraphIO(model.arch, model.in_channels, dict(model.heads), bool(model.multi_head))
    if isinstance(model, RuntimeModule):
        return model.io
    return GraphIO(type(model).__name__)


class RuntimeModule(nn.Module):
    """An exported graph run by another runtime behind the ``nn.Module`` interface fcnseg's inference uses:
    ``forward`` takes ``(N, C, H, W)`` float tensors and returns scores like the FCN ``like`` (a dict per head
    for multi-head nets). Subclasses implement :meth:`run` (NumPy in, a list of NumPy outputs out)."""

    def __init__(self, like: nn.Module) -> None:
        super().__init__()
        self.io = graph_io(like)
        self.arch, self.heads, self.multi_head = self.io.arch, dict(self.io.heads), self.io.multi_head
        self.in_channels = self.io.in_channels

    @property
    def num_classes(self) -> int:
        return self.heads[""]

    def run(self, x: Any) -> list[Any]:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> Any:
        tensors = [torch.from_numpy(o) for o in self.run(x.detach().float().cpu().numpy())]
        return dict(zip(self.heads, tensors, strict=True)) if self.multi_head else tensors[0]
