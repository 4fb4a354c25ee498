"""The model's queue: bounded, shared fairly, and honest about the wait.

One image runs on the model at a time (the network already uses every core). Requests beyond that wait in a
queue of at most ``size``, and one client (address) holds at most ``per_client`` places in it, so a client
sending many large images cannot hold the model for everyone else. A request that finds no place is answered
at once with ``503`` and ``Retry-After``: the seconds the requests ahead are expected to take, from the model's
measured cost per pixel.
"""

from __future__ import annotations

import contextlib
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import anyio

__all__ = ["Busy", "ModelQueue", "Ticket"]


class Busy(Exception):
    """No place in the queue: ``detail`` says why, ``retry_after`` when to try again (seconds)."""

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.detail, self.retry_after = detail, retry_after


@dataclass(eq=False)
class Ticket:
    """A place in the queue: its client and, once the image is decoded, its pixels."""

    client: str
    pixels: int = 0


class ModelQueue:
    """At most ``size`` requests admitted (running or waiting), ``per_client`` of one client; the model taken
    by one at a time through :attr:`limiter` (first come, first served).

    Args:
        seconds_per_pixel: the model's measured cost, for ``Retry-After``.
        typical_pixels: what a request whose image is not decoded yet counts for in that estimate.
    """

    def __init__(self, size: int, per_client: int, seconds_per_pixel: float, typical_pixels: int = 1 << 20) -> None:
        if size < 1 or per_client < 1:
            raise ValueError(f"queue size and per-client places must be >= 1, got {size} and {per_client}")
        self.size, self.per_client, self.cost, self.typical = size, per_client, seconds_per_pixel, typical_pixels
        self.limiter = anyio.CapacityLimiter(1)
        self.tickets: list[Ticket] = []
        self.by_client: Counter[str] = Counter()

    def retry_after(self) -> int:
        """Whole seconds the admitted requests are expected to keep the model (at least 1)."""
        pixels = sum(t.pixels or self.typical for t in self.tickets)
        return max(1, math.ceil(pixels * self.cost))

    @contextlib.contextmanager
    def admit(self, client: str) -> Iterator[Ticket]:
        """A place for ``client`` for the ``with`` block, or :class:`Busy` at once."""
        if len(self.tickets) >= self.size:
            raise Busy(f"the model is busy: {len(self.tickets)} requests are queued; retry", self.retry_after())
        if self.by_client[client] >= self.per_client:
            raise Busy(
                f"{self.by_client[client]} of your requests are already queued (at most {self.per_client} per "
                "client); retry when one is answered",
                self.retry_after(),
            )
        ticket = Ticket(client)
        self.tickets.append(ticket)
        self.by_client[client] += 1
        try:
            yield ticket
        finally:
            self.tickets.remove(ticket)
            self.by_client[client] -= 1
            if not self.by_client[client]:
                del self.by_client[client]
